#!/usr/bin/env python3
"""Generates the data of the example models (deterministic; standard library only).

  sentiment_{train,valid,test}.tsv  LABEL<TAB>TEXT. Word order decides the label: "good , not bad"
                                    is pos, "bad , not good" is neg, with the same words. The test
                                    set uses (subject, adjective, adjective, template) combinations
                                    never seen in training.
  chars_{train,valid}.txt           English-like text from a small grammar, for a character model.
  tagger_{train,valid}.tsv          TOKENS<TAB>TAGS: part-of-speech tags where several words
                                    ("book", "watch", "light", "run") are a noun or a verb by context.

Usage: python3 examples/make_data.py [OUT_DIR]   (default: examples/data)
Also prints the held-out accuracy of a bag-of-words classifier on the sentiment task, which cannot
beat chance by much: the words are the same, only their order differs.
"""
import math
import os
import random
import sys

POS = ["good", "great", "fine", "excellent", "lovely", "superb", "brilliant", "pleasant", "wonderful", "charming"]
NEG = ["bad", "awful", "poor", "terrible", "boring", "dull", "horrible", "weak", "dreadful", "clumsy"]
SUBJECTS = ["the movie", "the film", "the plot", "the food", "this book", "the show", "the acting", "our trip",
            "the hotel", "the music", "the ending", "the service", "the game", "the story", "the cast", "the album"]
INTENS = ["", "", "", "really ", "very ", "truly ", "quite "]
# (template, which adjective the label follows): a = first, b = second.
TEMPLATES = [
    ("{s} was {i}{a} , not {b}", "a"),
    ("{s} was not {a} but {i}{b}", "b"),
    ("{s} was {i}{a} rather than {b}", "a"),
    ("not {a} at all , {s} was {i}{b}", "b"),
    ("{s} seemed {b} at first but was {i}{a}", "a"),
    ("{s} was never {a} , always {i}{b}", "b"),
]


def sentiment(rng, n, allowed):
    rows = []
    while len(rows) < n:
        s, t = rng.choice(SUBJECTS), rng.randrange(len(TEMPLATES))
        label = rng.choice(["pos", "neg"])
        decisive = rng.choice(POS if label == "pos" else NEG)
        other = rng.choice(NEG if label == "pos" else POS)
        template, which = TEMPLATES[t]
        a, b = (decisive, other) if which == "a" else (other, decisive)
        if not allowed((s, a, b, t)):
            continue
        rows.append((label, template.format(s=s, i=rng.choice(INTENS), a=a, b=b)))
    return rows


def held_out(combo):
    """A fixed fifth of all combinations is reserved for the test set."""
    s, a, b, t = combo
    words = POS + NEG
    return (SUBJECTS.index(s) * 7 + words.index(a) * 3 + words.index(b) * 5 + t) % 5 == 0


def bag_of_words_accuracy(train, test):
    """Multinomial naive Bayes on word counts."""
    counts = {"pos": {}, "neg": {}}
    totals = {"pos": 0, "neg": 0}
    for label, text in train:
        for w in text.split():
            counts[label][w] = counts[label].get(w, 0) + 1
            totals[label] += 1
    vocab = set(counts["pos"]) | set(counts["neg"])

    def score(label, text):
        return sum(math.log((counts[label].get(w, 0) + 1) / (totals[label] + len(vocab))) for w in text.split())

    right = sum(1 for label, text in test if max(("pos", "neg"), key=lambda l: score(l, text)) == label)
    return right / len(test)


NOUNS = ["cat", "dog", "sailor", "child", "farmer", "teacher", "bird", "king", "queen", "miller", "baker", "river",
         "garden", "village", "ship", "horse", "house", "forest", "song", "letter", "lamp", "bell", "wind", "stone"]
ADJS = ["old", "little", "quiet", "red", "bright", "happy", "tired", "brave", "small", "green", "cold", "gentle"]
VERBS_T = ["found", "saw", "carried", "painted", "followed", "loved", "built", "heard", "watched", "kept"]
VERBS_I = ["slept", "sang", "laughed", "waited", "danced", "walked", "smiled", "listened", "rested", "wandered"]
PLACES = ["by the river", "in the garden", "near the old mill", "under the tree", "on the hill", "at the market",
          "in the village", "across the bridge", "beside the sea", "behind the house"]
TIMES = ["in the morning", "at night", "after the rain", "before dawn", "every day", "in the spring", "at noon"]


def noun_phrase(rng):
    adj = rng.choice(ADJS) + " " if rng.random() < 0.5 else ""
    return f"{rng.choice(['the', 'a', 'the', 'one'])} {adj}{rng.choice(NOUNS)}"


def sentence(rng):
    np_ = noun_phrase(rng)
    if rng.random() < 0.5:
        core = f"{np_} {rng.choice(VERBS_T)} {noun_phrase(rng)}"
    else:
        core = f"{np_} {rng.choice(VERBS_I)}"
    if rng.random() < 0.6:
        core += " " + rng.choice(PLACES)
    if rng.random() < 0.3:
        core += " " + rng.choice(TIMES)
    if rng.random() < 0.2:
        core += f" and {rng.choice(VERBS_I)}"
    return core[0].upper() + core[1:] + rng.choice([".", ".", "!"])


def text(rng, n):
    lines, line = [], []
    for _ in range(n):
        line.append(sentence(rng))
        if len(line) == 3:
            lines.append(" ".join(line))
            line = []
    return "\n".join(lines) + "\n"


# Tagging: words that are a noun after a determiner and a verb after a pronoun or "to".
AMBIGUOUS = ["book", "watch", "light", "run", "play", "fish", "paint", "ring"]
PRON = ["i", "we", "they", "you"]
DETS = ["the", "a", "my", "this"]


def tagged(rng):
    words, tags = [], []

    def add(w, t):
        words.append(w)
        tags.append(t)

    choice = rng.random()
    if choice < 0.4:  # PRON [ADV] VERB DET [ADJ] NOUN
        add(rng.choice(PRON), "PRON")
        if rng.random() < 0.3:
            add(rng.choice(["often", "never", "always"]), "ADV")
        add(rng.choice(AMBIGUOUS), "VERB")
        add(rng.choice(DETS), "DET")
        if rng.random() < 0.5:
            add(rng.choice(ADJS), "ADJ")
        add(rng.choice(AMBIGUOUS + NOUNS), "NOUN")
    elif choice < 0.7:  # DET [ADJ] NOUN VERB-past PREP DET NOUN
        add(rng.choice(DETS), "DET")
        if rng.random() < 0.5:
            add(rng.choice(ADJS), "ADJ")
        add(rng.choice(AMBIGUOUS), "NOUN")
        add(rng.choice(VERBS_I), "VERB")
        add(rng.choice(["near", "under", "by", "in"]), "ADP")
        add(rng.choice(DETS), "DET")
        add(rng.choice(NOUNS + AMBIGUOUS), "NOUN")
    else:  # PRON want to VERB DET NOUN
        add(rng.choice(PRON), "PRON")
        add(rng.choice(["want", "like", "need"]), "VERB")
        add("to", "PART")
        add(rng.choice(AMBIGUOUS), "VERB")
        add(rng.choice(DETS), "DET")
        add(rng.choice(AMBIGUOUS + NOUNS), "NOUN")
    if rng.random() < 0.5:
        add(".", "PUNCT")
    return " ".join(words) + "\t" + " ".join(tags)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(2026)
    train = sentiment(rng, 4000, lambda c: not held_out(c))
    valid = sentiment(rng, 500, lambda c: not held_out(c))
    test = sentiment(rng, 1000, held_out)
    for name, rows in [("train", train), ("valid", valid), ("test", test)]:
        with open(os.path.join(out, f"sentiment_{name}.tsv"), "w") as f:
            f.writelines(f"{label}\t{t}\n" for label, t in rows)
    with open(os.path.join(out, "chars_train.txt"), "w") as f:
        f.write(text(rng, 6000))
    with open(os.path.join(out, "chars_valid.txt"), "w") as f:
        f.write(text(rng, 600))
    for name, n in [("train", 3000), ("valid", 500)]:
        with open(os.path.join(out, f"tagger_{name}.tsv"), "w") as f:
            f.writelines(tagged(rng) + "\n" for _ in range(n))
    print(f"wrote data to {out}; bag-of-words (naive Bayes) sentiment test accuracy: {bag_of_words_accuracy(train, test):.3f}")


if __name__ == "__main__":
    main()
