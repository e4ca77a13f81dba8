"""Training of the emotion models (`ivr train text-emotion`, `ivr train acoustic-emotion`)."""
