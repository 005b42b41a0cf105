"""Fake but plausible personal data of the simulated customers: names, phones, national ids, addresses.

The customers table carries it as a company's own extract would; nothing reads it past validation
(`features.schema.PERSONAL_DATA_COLUMNS`), so it never enters a feature set.
"""

from __future__ import annotations

import numpy as np

_SURNAMES = np.array(["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
                      "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo"])
_SYLLABLES = np.array(["wei", "fang", "min", "jing", "lei", "jun", "yan", "hua", "ping", "gang", "xin",
                       "li", "qiang", "ying", "tao", "ming", "chao", "hong", "yu", "xia", "bo", "lan",
                       "hao", "jie", "da", "feng", "sheng", "tai", "long", "kang"])
_INDUSTRY_WORD = np.array(["Medical", "Education", "Manufacturing", "Logistics", "Construction",
                           "Retail", "Technology", "Hospitality", "Property"])
_SUFFIX = np.array(["Co., Ltd.", "Group", "Holdings", "Trading Co.", "Services Co."])
_STREETS = np.array(["Renmin", "Jiefang", "Zhongshan", "Heping", "Jianshe", "Xinhua", "Changjiang",
                     "Huanghe", "Wenhua", "Chaoyang", "Binhai", "Dongfeng"])
_CITIES = {  # by city tier
    0: np.array(["Beijing", "Shanghai", "Guangzhou", "Shenzhen"]),
    1: np.array(["Chengdu", "Hangzhou", "Wuhan", "Nanjing", "Xi'an", "Suzhou", "Tianjin"]),
    2: np.array(["Yangzhou", "Luoyang", "Zhuhai", "Guilin", "Baoding", "Wuhu"]),
    3: np.array(["Hami", "Lhasa", "Golmud", "Yushu"]),
}


def personal_data(r: np.random.Generator, indiv: np.ndarray, industry: np.ndarray, age: np.ndarray,
                  city: np.ndarray, signup: np.ndarray) -> dict[str, np.ndarray]:
    """Fake but plausible names, phones, national ids and addresses (customer order as given)."""
    N = len(indiv)
    cap = np.char.capitalize
    syl = lambda: _SYLLABLES[r.integers(0, len(_SYLLABLES), N)]  # noqa: E731
    person = np.char.add(np.char.add(_SURNAMES[r.integers(0, len(_SURNAMES), N)], " "),
                         np.char.add(cap(syl()), syl()))
    firm = np.char.add(np.char.add(cap(syl()), syl()), " ")
    firm = np.char.add(np.char.add(firm, _INDUSTRY_WORD[industry]), " ")
    firm = np.char.add(firm, _SUFFIX[r.integers(0, len(_SUFFIX), N)])
    name = np.where(indiv, person, firm)

    unique9 = r.choice(10**9, N, replace=False) if N <= 10**7 else r.integers(0, 10**9, N)
    prefix = np.array(["13", "15", "17", "18", "19"])[r.integers(0, 5, N)]
    phone = np.char.add(prefix, np.char.zfill(unique9.astype(str), 9))

    # individuals: 6-digit area, birth date (by age band), 3-digit sequence, check character;
    # businesses: an 18-character unified social credit code
    area = r.integers(110000, 660000, N).astype(str)
    age_years = np.array([25, 45, 70])[np.maximum(age, 0)] + r.integers(-6, 7, N)
    birth = (signup - age_years * 365 - r.integers(0, 365, N)).astype("datetime64[D]")
    birth_txt = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "")
    seq = np.char.zfill((unique9 % 1000).astype(str), 3)
    check = np.array(list("0123456789X"))[r.integers(0, 11, N)]
    person_id = np.char.add(np.char.add(np.char.add(area, birth_txt), seq), check)
    alnum = np.array(list("0123456789ABCDEFGHJKLMNPQRTUWXY"))
    body = r.integers(0, len(alnum), (N, 9))
    code = alnum[body[:, 0]]
    for j in range(1, 9):
        code = np.char.add(code, alnum[body[:, j]])
    firm_id = np.char.add(np.char.add(np.char.add("91", area), code), np.char.zfill((unique9 % 10).astype(str), 1))
    national_id = np.where(indiv, person_id, firm_id)

    city_name = np.empty(N, dtype=object)
    for tier, names in _CITIES.items():
        sel = city == tier
        city_name[sel] = names[r.integers(0, len(names), int(sel.sum()))]
    number = r.integers(1, 999, N).astype(str)
    street = _STREETS[r.integers(0, len(_STREETS), N)]
    addr = np.char.add(np.char.add(np.char.add("No. ", number), " "), np.char.add(street, " Road, "))
    addr = np.char.add(addr, city_name.astype(str))
    address = np.where(r.random(N) < 0.06, None, addr.astype(object))
    return {"name": name.astype(object), "phone": phone.astype(object), "national_id": national_id.astype(object),
            "address": address}
