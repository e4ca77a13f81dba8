"""Training and evaluation of the models the dialog runs (`ivr train ...`, `ivr bench-intents`, `ivr eval-nlu`)."""
