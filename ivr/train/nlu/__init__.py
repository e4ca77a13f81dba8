"""Training and evaluation of the intent model (`ivr train intents`, `ivr bench-intents`, `ivr eval-nlu`)."""
