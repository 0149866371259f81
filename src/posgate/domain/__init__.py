"""Business vocabulary shared by host, terminal and console: response codes, masking, money."""
