"""Word forms that mean the same thing in one form: "statements" = "statement", "opened" = "opening" = "open",
"my cards" = "my card", "stolen" = "stole" = "steal".

`stem(word)` is a light suffix stripper, not a dictionary lemmatiser: it only has to give a word and its
inflections the same key, the same on both sides of a comparison (a flow's keyword and a caller's turn, a
FAQ paraphrase and a question). Rules, in order, on a lower-case word:
1. a small table of irregular forms (stolen/stole -> steal, lost/losing -> lose, ...);
2. words of three letters or fewer are kept ("yes", "bus", "has");
3. plural and third person: -ies -> -y, -sses/-shes/-ches/-xes -> drop -es, else a final -s that is not
   -ss/-us/-is is dropped ("hours" -> "hour", "business" stays);
4. -ing and -ed are dropped when at least three letters with a vowel stay, and a doubled final consonant
   is undoubled ("stopped" -> "stop"; l, s, z stay doubled: "called", "missed");
5. a final -e is dropped, so "close", "closed", "closing" all give "clos".
The keys are not always words ("clos", "arriv"); they are only compared with each other.
"""

from __future__ import annotations

from functools import lru_cache

IRREGULAR: dict[str, str] = {
    "stolen": "steal", "stole": "steal", "steals": "steal", "stealing": "steal", "steal": "steal",
    "lost": "lose", "lose": "lose", "loses": "lose", "losing": "lose",
    "took": "take", "taken": "take", "takes": "take", "taking": "take", "take": "take",
    "gone": "go", "went": "go", "goes": "go", "going": "go",
    "left": "leave", "leaving": "leave", "leaves": "leave", "leave": "leave",
    "forgot": "forget", "forgotten": "forget", "forgetting": "forget", "forget": "forget",
    "paid": "pay", "pays": "pay", "paying": "pay",
    "sent": "send", "sending": "send", "sends": "send",
    "spent": "spend", "spending": "spend",
    "found": "find", "finding": "find", "finds": "find",
    "got": "get", "gotten": "get", "getting": "get", "gets": "get",
    "did": "do", "does": "do", "done": "do", "doing": "do",
    "was": "be", "were": "be", "is": "be", "are": "be", "am": "be", "been": "be", "being": "be",
    "has": "have", "had": "have", "having": "have", "have": "have",
    "said": "say", "says": "say", "saying": "say",
    "men": "man", "women": "woman", "people": "person", "persons": "person",
    "children": "child", "monies": "money", "moneys": "money",
    "withdrew": "withdraw", "withdrawn": "withdraw", "withdrawals": "withdrawal",
    "closing": "clos", "closed": "clos", "closes": "clos", "close": "clos",
    "opened": "open", "opens": "open", "opening": "open", "openings": "open",
    "nothing": "nothing", "something": "something", "anything": "anything", "everything": "everything",
    "morning": "morning", "evening": "evening", "thing": "thing", "things": "thing",
    "ring": "ring", "bring": "bring", "during": "during", "king": "king", "sing": "sing",
    "news": "news", "series": "series", "species": "species", "always": "always", "sometimes": "sometimes",
}
_KEEP_DOUBLE = frozenset("lsz")
_VOWELS = frozenset("aeiouy")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The comparison key of one lower-case word (see the module rules)."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    w = word
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "shes", "ches", "xes", "zzes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        base = w[:-len(suffix)]
        if w.endswith(suffix) and len(base) >= 3 and any(c in _VOWELS for c in base):
            w = base
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in _VOWELS and w[-1] not in _KEEP_DOUBLE:
                w = w[:-1]
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def stem_words(text: str) -> str:
    """Every word of normalized (lower-case, space-separated) text replaced by its key."""
    return " ".join(stem(word) for word in text.split())
