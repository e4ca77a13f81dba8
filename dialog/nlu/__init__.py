"""Natural-language understanding for caller turns: intents, slots and the FAQ knowledge base.

- `dialog.nlu.model`: a linear intent classifier over word and character n-grams, loaded from
  numpy weights and a JSON vocabulary (no pickle, no scikit-learn at run time), with an optional head
  over all-MiniLM-L6-v2 sentence vectors (`dialog.nlu.embed`); its labels are the flow's intents, `oos`
  and `faq:<id>` for FAQ entries.
- `ivr.train.nlu.train`: training and evaluation (`ivr train intents FILE`), scikit-learn at training time.
- `dialog.nlu.slots`: spoken and keyed digits, amounts, dates, yes/no.
- `dialog.nlu.faq`: question-answer retrieval by sentence vectors and TF-IDF, with a threshold.
- `dialog.nlu.lemma`, `dialog.nlu.text`: word forms ("statements" = "statement"), text as the models see
  it, self-corrections ("..., no wait, I meant my balance").
- `dialog.nlu.understand`: the object the call session runs before each dialog step (intent probabilities
  and FAQ candidates); the dialog weighs them with a node's keywords in `dialog.decide`.
- `ivr.train.nlu.turns_eval`: `ivr eval-nlu FILE`, what the flow does with single caller turns.
"""
