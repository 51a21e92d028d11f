"""The listed universe: 6-digit codes, ISINs, Korean-looking names, market (KOSPI/KOSDAQ)."""
from __future__ import annotations

import numpy as np

_SYLLABLES = list("한국대성동서신진영삼우현광태화금명세경일상원보해중남북미제천호인아주도유창")
_SUFFIXES = ["전자", "화학", "바이오", "제약", "건설", "금융", "홀딩스", "에너지", "반도체", "중공업",
             "물산", "산업", "테크", "소재", "통신", "식품", "증권", "해운", "기계", "엔터"]


def symbol_codes(seed: int, n: int) -> list[str]:
    """Distinct codes ending in 0 like most KRX ordinary shares, sorted."""
    rng = np.random.default_rng([seed, 1])
    picks = rng.choice(np.arange(1, 99_999), size=n, replace=False) * 10
    return sorted(f"{int(c):06d}" for c in picks)


def symbol_names(seed: int, codes: list[str]) -> dict[str, str]:
    rng = np.random.default_rng([seed, 2])
    names: dict[str, str] = {}
    used: set[str] = set()
    for code in codes:
        while True:
            stem = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))
            name = stem + _SUFFIXES[int(rng.integers(len(_SUFFIXES)))]
            if name not in used:
                break
        used.add(name)
        names[code] = name
    return names


def isin(code: str) -> str:
    """KR7 + code + 00 + the ISIN check digit (Luhn over the letters-as-numbers string)."""
    body = f"KR7{code}00"
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return body + str((10 - total % 10) % 10)
