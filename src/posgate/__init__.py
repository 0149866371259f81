"""posgate: card acquiring for China UnionPay (CUP) style POS terminals.

An acquiring host speaking the CUP POS ISO 8583 dialect, a POS terminal (library, CLI,
full-screen emulator, load generator) and a merchant web console.
"""

__version__ = "0.1.0"
