"""Natural English sentences the project has never seen, for ``brain2text synth --sentences``:
the one- and two-line quotations of the Debian ``fortunes`` files (``apt-get install fortunes``,
``/usr/share/games/fortunes``), cleaned as ``prepare`` cleans transcripts, with 3 to 14 words
that all have a CMU dictionary pronunciation. None was written for this project.

    python benchmarks/fortune_sentences.py OUT.txt [--fortunes DIR] [--max-lines 2]

Prints how many quotations were read and kept; the sentences go to OUT.txt, one a line, in a
stable order (sorted), so the same ``fortunes`` package gives the same file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from brain2text.phonemes import has_letters, words_of
from brain2text.synth.text_source import pronounceable

FORTUNES = Path("/usr/share/games/fortunes")
MIN_WORDS, MAX_WORDS = 3, 14  # real trials hold one sentence of a few to ~15 words


def quotations(folder: Path, max_lines: int) -> Iterator[str]:
    """Every quotation of ``max_lines`` lines or fewer of the fortune files in ``folder`` (the
    files without an extension; records end at a line holding ``%``), joined into one line,
    without its attribution (a line or a tail starting with ``--``)."""
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.suffix):
        record: list[str] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines() + ["%"]:
            if line.strip() == "%":
                quote = [
                    part.split(" -- ")[0] for part in record if not part.strip().startswith("--")
                ]
                if 0 < len(quote) <= max_lines:
                    yield " ".join(part.strip() for part in quote)
                record = []
            elif line.strip():
                record.append(line)


def usable(text: str) -> str | None:
    """The cleaned sentence (without lone dashes) if it has 3-14 words, all pronounceable;
    else None."""
    words = [w for w in words_of(text) if has_letters(w)]
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    sentence = " ".join(words)
    return sentence if pronounceable(sentence) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--fortunes", type=Path, default=FORTUNES)
    parser.add_argument("--max-lines", type=int, default=2, help="longest quotation, in lines")
    args = parser.parse_args(argv)
    if not args.fortunes.is_dir():
        print(f"{args.fortunes}: no fortune files (apt-get install fortunes)", file=sys.stderr)
        return 1
    read = list(quotations(args.fortunes, args.max_lines))
    kept = sorted({s for s in map(usable, read) if s is not None})
    args.out.write_text("".join(f"{s}\n" for s in kept), encoding="utf-8")
    print(
        f"{len(read)} quotations of <= {args.max_lines} lines, {len(kept)} sentences -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
