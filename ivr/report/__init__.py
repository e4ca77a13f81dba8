"""Reports over stored calls (`ivr report ...`)."""
