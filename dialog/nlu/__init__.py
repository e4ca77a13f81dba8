"""Natural-language understanding for caller turns: intents, slots and the FAQ knowledge base.

- `dialog.nlu.model`: a linear intent classifier over word and character n-grams, loaded from
  numpy weights and a JSON vocabulary (no pickle, no scikit-learn at run time).
- `dialog.nlu.train`: training and evaluation (`ivr train intents FILE`), scikit-learn at training time.
- `dialog.nlu.slots`: spoken and keyed digits, amounts, dates, yes/no.
- `dialog.nlu.faq`: question-answer retrieval with a threshold.
- `dialog.nlu.understand`: the object the call session runs before each dialog step.
"""
