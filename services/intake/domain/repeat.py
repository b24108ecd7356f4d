"""重信重访: is a new petition the same matter as an earlier one? Character-bigram Jaccard similarity
(good enough for Chinese without segmentation; jieba would be the next step)."""

SIMILAR_ENOUGH = 0.5


def bigrams(text: str) -> set[str]:
    t = "".join(ch for ch in text if not ch.isspace() and ch not in "，。、；：！？,.;:!?（）()“”\"'")
    return {t[i:i + 2] for i in range(len(t) - 1)} or {t}


def similarity(a: str, b: str) -> float:
    x, y = bigrams(a), bigrams(b)
    return len(x & y) / len(x | y) if x | y else 0.0
