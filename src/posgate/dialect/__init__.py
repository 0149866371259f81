"""The CUP POS dialect: the field table, typed sub-fields, and the operations table."""
