"""How ``prepare --phonemizer cmu`` labels differ from ``--phonemizer reference``.

    python benchmarks/phonemizer_labels.py                 # the 40 sentences below
    python benchmarks/phonemizer_labels.py --sentences FILE [--lexicon LEXICON]   # one a line

Prints the counts (sentences differing, phoneme edit distance totals), the cause of each
differing word, and the differing sentences with both labels. No timing: the figures are exact
and the same on every machine (docs/prepared-format.md quotes them; a test pins them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brain2text.g2p import LabelComparison, compare_phonemizers
from brain2text.phonemes import read_lexicon

# Conversational sentences in the style of the Switchboard and OpenWebText prompts: no digits;
# contractions, hyphens, quotes and homographs as people write them.
SENTENCES = (
    "I don't think that's going to work out for us.",
    "It's a well-known fact that they're always late.",
    "We'll see what happens when the kids get home.",
    "You can't really blame him for that.",
    "She said she'd read the book before the movie came out.",
    "I used to live in a small town up north.",
    "Do you use your phone a lot at work?",
    "Could you close the door on your way out?",
    "They're going to record the whole thing tonight.",
    "My mother-in-law is coming over this weekend.",
    "That was a so-called expert on the news.",
    "I wouldn't have done it if I'd known.",
    "We've been trying to get a hold of them all day.",
    "Y'all should come down and visit sometime.",
    "The kids' toys are all over the living room floor.",
    "I was - well - kind of tired after that.",
    "He's a real go-getter, you know.",
    "Let's not make a big deal out of it.",
    "I'll have to ask my boss about the time off.",
    "We had a long-term plan but it fell apart.",
    "She's the one who's always upset about the schedule.",
    "I think the present system works pretty well.",
    "They didn't want to increase the price again.",
    "What's the subject of the meeting tomorrow?",
    "You should've seen the look on his face.",
    "I object to the way they handled it.",
    "Uh-huh, that's exactly what I meant.",
    "He lives in a big old house near the lake.",
    "We're not gonna make it in time.",
    "I'd rather stay home and watch a movie.",
    "The project was a complete waste of time.",
    "Our neighbors' dog barks all night long.",
    "That's a pretty self-explanatory answer.",
    "They've got a brand-new minivan.",
    "I'm not sure if he's coming or not.",
    "She'll probably excuse herself early.",
    "I don't wanna deal with the paperwork.",
    "'Cause I said so, that's why.",
    "I listened to a podcast about cryptocurrency.",
    "She posted a selfie with her grandkids.",
)


def report(comparison: LabelComparison) -> str:
    s = comparison.summary()
    per = s["edits"] / s["n_reference_phonemes"] if s["n_reference_phonemes"] else 0.0
    lines = [
        f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
        "",
        "| sentences | cmu cannot label | differing | edits (cmu vs reference) "
        "| reference phonemes | edits / phonemes |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {s['n_sentences']} | {s['n_cmu_unlabelled']} | {s['n_differing']} | {s['edits']} "
        f"| {s['n_reference_phonemes']} | {per:.2%} |",
        "",
        "| cause (per differing word) | words |",
        "| --- | ---: |",
        *(f"| {cause} | {n} |" for cause, n in s["causes"].items()),
        "",
        f"homograph tokens whose reference label depends on the missing POS tag: "
        f"{s['n_untagged_homographs']} ({', '.join(sorted(comparison.untagged))})",
        "",
    ]
    for row in comparison.sentences:
        if row.cmu != row.reference:
            lines += [
                f"{row.text}",
                f"  cmu:       {' '.join(row.cmu) if row.cmu else '(stops)'}",
                f"  reference: {' '.join(row.reference)}  [{row.edits} edits]",
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=Path, default=None, help="one sentence a line")
    parser.add_argument("--lexicon", type=Path, default=None, help="CMU-format user lexicon")
    args = parser.parse_args(argv)
    sentences = (
        SENTENCES
        if args.sentences is None
        else [t for t in args.sentences.read_text(encoding="utf-8").splitlines() if t.strip()]
    )
    lexicon = read_lexicon(args.lexicon) if args.lexicon is not None else None
    print(report(compare_phonemizers(sentences, lexicon)))


if __name__ == "__main__":
    main()
