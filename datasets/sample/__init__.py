"""The demo city (澄州市): believable, fictional data written into the store through the import."""
