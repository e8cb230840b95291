"""What other systems put in: the catalog (products and barcodes), orders with their shipped
serials, returns (RMAs) and carrier tracking events. The API's writes (and the CSV import) call
these use cases; the screens read what they wrote."""
