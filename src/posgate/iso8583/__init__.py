"""A small, fast ISO 8583 codec driven by a declarative dialect table (see ``posgate.dialect``)."""

from posgate.iso8583.codec import Codec, compile_field
from posgate.iso8583.errors import CodecError
from posgate.iso8583.message import FieldValue, Message
from posgate.iso8583.spec import FieldSpec, Kind, Prefix, Sensitivity
from posgate.iso8583.tlv import TLV

__all__ = ["Codec", "CodecError", "FieldSpec", "FieldValue", "Kind", "Message", "Prefix", "Sensitivity", "TLV", "compile_field"]
