"""Synthetic-voice neutral speech: call-center sentences spoken by the local TTS voices.

Why: the acoustic model is trained on acted human speech (RAVDESS, TESS). A synthetic voice is far
from every one of those speakers, and the first models heard every Piper sentence as angry (voice
negativity 0.96-1.0), whatever the words. Simulated callers (tests, `ivr call --script`, benches)
speak with Piper, so a calm synthetic caller was escalated for "negative emotion". These clips teach
the model what it should say about such a voice: nothing emotional. They are labelled neutral.

What this means: the model learns that *these synthetic voices* are neutral. It learns nothing about
real callers from them; a real caller with a flat, machine-like delivery may be heard as a little more
neutral than before. The clips are a training group of their own ("synthetic-piper",
"synthetic-espeak") and are never among the speakers an evaluation figure is measured on.

The sentences are ordinary caller turns (requests, answers, yes/no, numbers) written for this
purpose. The end-to-end tests' caller turns are deliberately not among them (`HELD_OUT_TURNS`), so
the check of those turns is on sentences the model has not heard. Clips are rendered once through
`tts.stream.speak` at 8 kHz (the path a simulated caller takes) and kept under the work directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ivr.train.emotion.corpus import Clip
from models.errors import AgentError
from tts.base import Synthesizer

SENTENCES: tuple[str, ...] = (
    # requests
    "I'd like to check the balance on my savings account.",
    "Can you tell me how much money is in my checking account?",
    "I need to report a stolen credit card.",
    "My debit card was taken from my bag this morning.",
    "I want to block my card, please.",
    "Could you send me a new card?",
    "I would like to order a replacement card.",
    "When will my new card arrive?",
    "I need to change my address.",
    "I moved last month and need to update my details.",
    "Can I change the phone number on my account?",
    "I'd like to update my email address.",
    "How do I reset my online banking password?",
    "I can't log in to the mobile app.",
    "The app keeps asking me for a code.",
    "I didn't receive the verification text.",
    "I want to transfer money to my daughter.",
    "How do I send money abroad?",
    "What is the fee for an international transfer?",
    "I'd like to set up a standing order.",
    "Can you cancel a direct debit for me?",
    "There's a payment on my statement I don't recognize.",
    "I think I was charged twice for the same purchase.",
    "I'd like to dispute a transaction.",
    "Can you explain this fee on my statement?",
    "I want to open a new savings account.",
    "How do I open an account for my son?",
    "I'd like to close my old account.",
    "What interest rate do you offer on savings?",
    "I'm calling about a mortgage.",
    "I'd like to ask about a personal loan.",
    "How much can I borrow?",
    "When is my next loan payment due?",
    "Can I make a payment on my credit card?",
    "I'd like to pay my credit card bill.",
    "What's the minimum payment this month?",
    "Can I increase my credit limit?",
    "I'm going abroad next week and want to let you know.",
    "Will my card work in Canada?",
    "I need a copy of my last statement.",
    "Can you send the statement by post?",
    "I'd like paper statements instead of email.",
    "How do I order a checkbook?",
    "I want to deposit a check.",
    "When will the deposit show up in my account?",
    "My salary hasn't arrived yet.",
    "Has my transfer gone through?",
    "Where is the nearest branch?",
    "Is the branch on Main Street open on Saturday?",
    "What time do you close today?",
    "Are you open on public holidays?",
    "I'd like to make an appointment with an advisor.",
    "Can I speak to someone about investments?",
    "Could you put me through to the loans team?",
    "I'd like to talk to the fraud department.",
    "Please connect me to customer support.",
    "I have a question about my pension.",
    "How do I add my wife to the account?",
    "I'd like to set up a joint account.",
    "Can I get a cash advance on my card?",
    "My card was declined at the shop.",
    "The cash machine kept my card.",
    "I forgot my PIN.",
    "How do I change my PIN?",
    "I'd like to activate my new card.",
    "I received a letter from you and have a question.",
    "I got a text message about a suspicious payment.",
    "Somebody called me pretending to be from the bank.",
    "I'd like to turn on notifications for payments.",
    "Can I freeze my card for a few days?",
    "I need to confirm a large payment.",
    "I'd like to raise my daily withdrawal limit.",
    "How long does a transfer take?",
    "Can you check whether my loan application was approved?",
    "I'd like to know the status of my complaint.",
    "I'm calling to follow up on my earlier call.",
    "I just want to check a recent payment.",
    "Could you read me my last five transactions?",
    "How much did I spend last month?",
    "Do you have a business account?",
    "I'd like to register for online banking.",
    "Can I pay my bills by phone?",
    "I want to set up a payment to my landlord.",
    "I need the routing number for my account.",
    "What's the sort code for my branch?",
    "Please send me the details by email.",
    "I'd like to change the name on my account.",
    "My partner passed away and I need to update the account.",
    "I'm calling on behalf of my mother.",
    "Can I order foreign currency?",
    # answers
    "My name is Daniel Harper.",
    "It's Maria Lopez, L O P E Z.",
    "My date of birth is the fourth of July, nineteen eighty two.",
    "I was born on March the twelfth, nineteen seventy.",
    "The last four digits are seven eight nine zero.",
    "My card number ends in four four two one.",
    "It's nine eight seven six five four.",
    "Two three five seven one one.",
    "Five five five, one two one two.",
    "My postcode is S W one A, one A A.",
    "The zip code is nine four one zero five.",
    "I live at twenty two Oak Street.",
    "The amount was forty two dollars and fifty cents.",
    "About three hundred pounds.",
    "It was on Tuesday afternoon.",
    "Last Friday, I think.",
    "Around the fifteenth of the month.",
    "From my checking account.",
    "To my savings account, please.",
    "The debit card.",
    "The credit card.",
    "My phone number is oh seven seven double oh, one two three four five six.",
    "My email is john at example dot com.",
    "The reference number is A B C one two three.",
    "It's the joint account.",
    "Just the one account.",
    "In the morning, if possible.",
    "Next Monday works for me.",
    "Two hundred and fifty.",
    "One thousand dollars.",
    "Twelve.",
    "Zero one.",
    "My security answer is Rover.",
    "My mother's maiden name is Smith.",
    "The shop was called Green Grocers.",
    "It was an online purchase.",
    "I was at home at the time.",
    "I still have the card with me.",
    "I haven't shared my details with anyone.",
    "I noticed it this morning.",
    "The balance, please.",
    "Savings.",
    "Checking.",
    "A new card.",
    "Opening times.",
    "Loans.",
    "Mortgages.",
    "Card services.",
    "Payments.",
    "Something else.",
    "The second option.",
    "Option three.",
    "The first one.",
    # yes / no / confirmations
    "Yes, that's right.",
    "Yes, please.",
    "Yeah.",
    "Yep, correct.",
    "That's correct.",
    "Correct.",
    "Sure.",
    "Okay.",
    "Alright, go ahead.",
    "Yes, I am.",
    "Yes, I do.",
    "Yes, that's me.",
    "No.",
    "No, thanks.",
    "No, that's not right.",
    "No, I don't.",
    "Nope.",
    "Not really.",
    "No, the other one.",
    "That's wrong, let me repeat it.",
    "Could you repeat that?",
    "Sorry, can you say that again?",
    "Can you speak a bit slower?",
    "Hold on a second.",
    "Just a moment, I'm getting my card.",
    "One moment, please.",
    "I'm not sure.",
    "I don't know.",
    "Maybe, let me think.",
    "I think so.",
    "Go back, please.",
    "Start again.",
    "Main menu.",
    "That's everything.",
    "That's all I needed.",
    "Thanks, bye.",
    "Thank you, goodbye.",
    "Great, thanks for your help.",
    "Perfect, thank you.",
    "Okay, I understand.",
    "Hello?",
    "Hi, good morning.",
    "Good afternoon.",
    "Hello, I have a quick question.",
    "Are you still there?",
)

HELD_OUT_TURNS: tuple[str, ...] = (
    "What is my account balance?", "No, that's all, thank you.", "I want to talk to an agent.",
    "Representative, please.", "I lost my card.", "What are your opening hours?",
    "my account number is one two three four five six", "Yes.",
    "Hi, what is my account balance?", "What is my balance?", "I need to speak to an agent.", "Agent please.",
    "I'd like a bank statement.", "My account number is one two three four five six.", "No, thank you.",
    "Yes, thanks.", "What is your daily cash withdrawal limit?", "What will the weather be like on Mars?",
)
"""The call tests' Piper caller turns (tests/test_emotion_e2e.py PIPER_TURNS): never training sentences
(compared without case and punctuation), so checking them is a held-out check."""

PIPER_SETTINGS: tuple[dict[str, float | None], ...] = (
    {"length_scale": None, "noise_scale": None},
    {"length_scale": 0.85, "noise_scale": 0.8},
    {"length_scale": 1.15, "noise_scale": 0.5},
)
"""Piper's default voice at its own pace, faster and slower (sentence i uses setting i mod 3)."""
ESPEAK_SETTINGS: tuple[tuple[str, int], ...] = (("en-us", 165), ("en-gb", 150), ("en-us", 190))


def _voices() -> Iterator[tuple[str, list[Synthesizer]]]:
    from tts.piper_tts import PiperSynthesizer

    yield "piper", [PiperSynthesizer(length_scale=s["length_scale"], noise_scale=s["noise_scale"])
                    for s in PIPER_SETTINGS]
    try:
        from tts.espeak import EspeakSynthesizer

        yield "espeak", [EspeakSynthesizer(v, wpm) for v, wpm in ESPEAK_SETTINGS]
    except AgentError as exc:  # espeak-ng missing: Piper alone
        print(f"no espeak-ng voices ({exc}): Piper alone", flush=True)


def synthetic_clips(work_dir: Path, progress: bool = True) -> list[Clip]:
    """Neutral clips of every sentence by each synthetic voice (rendered once, kept in work_dir)."""
    from telephony.audio.audiofile import write_wav
    from tts.stream import speak

    if {plain_words(s) for s in SENTENCES} & {plain_words(s) for s in HELD_OUT_TURNS}:
        raise AssertionError("a held-out test turn is among the synthetic training sentences")
    clips: list[Clip] = []
    for name, synths in _voices():
        folder = work_dir / "synthetic" / name
        folder.mkdir(parents=True, exist_ok=True)
        todo = [i for i in range(len(SENTENCES)) if not (folder / f"{i:03d}.wav").is_file()]
        if todo and progress:
            print(f"rendering {len(todo)} {name} sentences into {folder}", flush=True)
        for i in range(len(SENTENCES)):
            path = folder / f"{i:03d}.wav"
            if not path.is_file():
                synth = synths[i % len(synths)]
                audio = np.concatenate(list(speak(synth, SENTENCES[i], 8000)))
                write_wav(path, audio.astype(np.int16), 8000)
            clips.append(Clip(path, "neutral", f"synthetic-{name}", "synthetic"))
    return clips


def plain_words(sentence: str) -> str:
    """Lower case, letters, digits and spaces: what a voice says, whatever the punctuation."""
    return " ".join("".join(c if c.isalnum() else " " for c in sentence.lower()).split())


def is_synthetic(group: str) -> bool:
    return group.startswith("synthetic-")


def synthetic_mask(groups: np.ndarray) -> np.ndarray:
    """True where a clip's group is a synthetic voice."""
    return np.array([is_synthetic(g) for g in groups], dtype=bool)
