"""Label core: label content, Code128 barcodes, ZPL rendering and raw network printing."""
