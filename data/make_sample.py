"""Write the demo corpus ``data/sample/`` from the paragraph banks in ``data/sample_banks/``.

    .venv/bin/python data/make_sample.py            # (re)write data/sample/ (and its README)
    .venv/bin/python data/make_sample.py --check    # exit 1 if data/sample/ is not this output

The corpus is what ``make run`` trains the default model on: several hundred short
Simplified-Chinese documents in the form of the seed (UN secretariat reports, resolutions
and country notes; line 1 ``%%%TAG|TAG|``, line 2 empty, then the text), tagged with a few
dozen upper-case UNBIS-like terms. Every sentence comes from the banks, which were written
for this project; the script only chooses, fills in and lays out. It is deterministic: the
same banks, ``--seed`` and ``--documents`` give byte-identical files.

How a document is made:

1. Its tags: a main subject drawn by weight (``PRIMARY``), related subjects each with their
   probability (``RELATED``), then the cross-cutting tags (international and technical
   cooperation, data collection, recommendations) with probabilities that are higher for
   crime and justice documents; at most four. "Programme" documents — overviews of the UN
   crime prevention and criminal justice programme, like the seed — carry CRIME PREVENTION,
   CRIMINAL JUSTICE and three to five of the seed's other tags (five to seven in all: broad
   reports are indexed with more terms, the seed with nine), and their paragraphs range
   over every crime subject, tagged or not, as such overviews do.
2. Its kind: a report (header line, title, summary, numbered paragraphs under section
   headings), a country note (one country throughout) or a resolution (preamble, numbered
   operative paragraphs).
3. Its paragraphs: two or three sentences of one tag's bank, the main subject getting about
   half of them; now and then a paragraph on a related subject the document is not tagged
   with. Slots (``{country}``, ``{y}``, ``{n}``, ``{topic}``, ``{actor}``, ``{action}``…)
   are filled per sentence; a RECOMMENDATIONS document ends with recommendations built from
   the actions of its other tags; no other document ends with recommendations.
4. Its layout, a third each: seed form (one line, segmented with jieba, a leading space and
   inline `` 1. `` markers), raw one line with inline markers, raw multi-line (one paragraph
   per line, numbered or not).
"""

from __future__ import annotations

import argparse
import filecmp
import logging
import random
import re
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
BANKS = HERE / "sample_banks"
OUT = HERE / "sample"
SEED = 13
DOCUMENTS = 420
MAX_TAGS = 4  # on every document but the programme overviews
PROGRAMME_TAGS = (5, 7)  # tags on a programme overview, like the seed's nine: broad reports

# ---------------------------------------------------------------------------------------
# The tag structure: how often each tag is a document's main subject, which tags go with it.

PROGRAMME = "PROGRAMME"  # not a tag: the overview documents of the crime programme
THE_SEEDS_TAGS = [
    "CRIME PREVENTION",
    "CRIMINAL JUSTICE",
    "INTERNATIONAL COOPERATION",
    "TRANSNATIONAL CRIME",
    "ORGANIZED CRIME",
    "TECHNICAL COOPERATION",
    "RULE OF LAW",
    "DATA COLLECTION",
    "RECOMMENDATIONS",
]
CROSS = ["INTERNATIONAL COOPERATION", "TECHNICAL COOPERATION", "DATA COLLECTION", "RECOMMENDATIONS"]

# main subject -> weight (about the number of documents with it as their main subject)
PRIMARY: dict[str, float] = {
    PROGRAMME: 32,
    "CRIME PREVENTION": 24,
    "CRIMINAL JUSTICE": 20,
    "RULE OF LAW": 13,
    "TRANSNATIONAL CRIME": 13,
    "ORGANIZED CRIME": 8,
    "CORRUPTION": 13,
    "TERRORISM": 11,
    "TRAFFICKING IN PERSONS": 11,
    "DRUG CONTROL": 13,
    "MIGRANT SMUGGLING": 5,
    "MONEY LAUNDERING": 5,
    "CYBERCRIME": 6,
    "VIOLENCE AGAINST WOMEN": 6,
    "PRISONS": 5,
    "FIREARMS": 4,
    "JUVENILE JUSTICE": 3,
    "FORENSIC SCIENCE": 3,
    "DATA COLLECTION": 4,
    "TECHNICAL COOPERATION": 2,
    "HUMAN RIGHTS": 21,
    "WOMEN'S RIGHTS": 13,
    "RIGHTS OF THE CHILD": 11,
    "EDUCATION": 15,
    "PUBLIC HEALTH": 17,
    "SUSTAINABLE DEVELOPMENT": 13,
    "POVERTY": 9,
    "ENVIRONMENT": 13,
    "CLIMATE CHANGE": 13,
    "FOOD SECURITY": 11,
    "WATER RESOURCES": 3,
    "PEACEKEEPING OPERATIONS": 13,
    "PEACEBUILDING": 8,
    "HUMANITARIAN ASSISTANCE": 11,
    "REFUGEES": 9,
    "MIGRATION": 9,
    "INTERNATIONAL TRADE": 11,
    "DISASTER RISK REDUCTION": 3,
    "INDIGENOUS PEOPLES": 2,
    "PERSONS WITH DISABILITIES": 2,
    "DISARMAMENT": 2,
    "EMPLOYMENT": 4,
}

# main subject -> [(tag, probability that the document also carries it)]
RELATED: dict[str, list[tuple[str, float]]] = {
    "CRIME PREVENTION": [
        ("CRIMINAL JUSTICE", 0.55),
        ("RULE OF LAW", 0.2),
        ("ORGANIZED CRIME", 0.08),
        ("VIOLENCE AGAINST WOMEN", 0.06),
        ("JUVENILE JUSTICE", 0.05),
    ],
    "CRIMINAL JUSTICE": [
        ("CRIME PREVENTION", 0.55),
        ("RULE OF LAW", 0.35),
        ("PRISONS", 0.1),
        ("HUMAN RIGHTS", 0.08),
        ("JUVENILE JUSTICE", 0.05),
    ],
    "RULE OF LAW": [
        ("CRIMINAL JUSTICE", 0.45),
        ("CRIME PREVENTION", 0.2),
        ("HUMAN RIGHTS", 0.2),
        ("PEACEBUILDING", 0.1),
    ],
    "TRANSNATIONAL CRIME": [
        ("ORGANIZED CRIME", 0.75),
        ("CRIME PREVENTION", 0.3),
        ("CRIMINAL JUSTICE", 0.25),
        ("DRUG CONTROL", 0.08),
        ("MONEY LAUNDERING", 0.08),
    ],
    "ORGANIZED CRIME": [
        ("TRANSNATIONAL CRIME", 0.6),
        ("CRIME PREVENTION", 0.35),
        ("CRIMINAL JUSTICE", 0.3),
        ("CORRUPTION", 0.1),
    ],
    "CORRUPTION": [
        ("CRIME PREVENTION", 0.3),
        ("CRIMINAL JUSTICE", 0.3),
        ("RULE OF LAW", 0.2),
        ("MONEY LAUNDERING", 0.15),
    ],
    "TERRORISM": [
        ("CRIMINAL JUSTICE", 0.4),
        ("CRIME PREVENTION", 0.3),
        ("TRANSNATIONAL CRIME", 0.15),
        ("HUMAN RIGHTS", 0.12),
        ("MONEY LAUNDERING", 0.08),
    ],
    "TRAFFICKING IN PERSONS": [
        ("TRANSNATIONAL CRIME", 0.35),
        ("ORGANIZED CRIME", 0.3),
        ("CRIME PREVENTION", 0.25),
        ("CRIMINAL JUSTICE", 0.2),
        ("MIGRANT SMUGGLING", 0.15),
        ("HUMAN RIGHTS", 0.12),
        ("WOMEN'S RIGHTS", 0.08),
    ],
    "DRUG CONTROL": [
        ("CRIME PREVENTION", 0.3),
        ("TRANSNATIONAL CRIME", 0.3),
        ("ORGANIZED CRIME", 0.25),
        ("PUBLIC HEALTH", 0.2),
        ("CRIMINAL JUSTICE", 0.15),
    ],
    "MIGRANT SMUGGLING": [
        ("TRANSNATIONAL CRIME", 0.5),
        ("ORGANIZED CRIME", 0.4),
        ("MIGRATION", 0.3),
        ("TRAFFICKING IN PERSONS", 0.2),
    ],
    "MONEY LAUNDERING": [
        ("ORGANIZED CRIME", 0.35),
        ("TRANSNATIONAL CRIME", 0.35),
        ("CORRUPTION", 0.25),
        ("CRIMINAL JUSTICE", 0.2),
        ("TERRORISM", 0.15),
    ],
    "CYBERCRIME": [
        ("CRIME PREVENTION", 0.35),
        ("CRIMINAL JUSTICE", 0.3),
        ("TRANSNATIONAL CRIME", 0.3),
        ("RIGHTS OF THE CHILD", 0.1),
    ],
    "VIOLENCE AGAINST WOMEN": [
        ("WOMEN'S RIGHTS", 0.6),
        ("CRIME PREVENTION", 0.4),
        ("CRIMINAL JUSTICE", 0.35),
        ("HUMAN RIGHTS", 0.15),
    ],
    "PRISONS": [("CRIMINAL JUSTICE", 0.7), ("HUMAN RIGHTS", 0.35), ("CRIME PREVENTION", 0.2)],
    "FIREARMS": [
        ("TRANSNATIONAL CRIME", 0.4),
        ("ORGANIZED CRIME", 0.4),
        ("CRIME PREVENTION", 0.3),
        ("DISARMAMENT", 0.2),
    ],
    "JUVENILE JUSTICE": [
        ("CRIMINAL JUSTICE", 0.7),
        ("RIGHTS OF THE CHILD", 0.6),
        ("CRIME PREVENTION", 0.3),
    ],
    "FORENSIC SCIENCE": [
        ("CRIMINAL JUSTICE", 0.7),
        ("CRIME PREVENTION", 0.3),
        ("DRUG CONTROL", 0.2),
    ],
    "DATA COLLECTION": [("CRIME PREVENTION", 0.7), ("CRIMINAL JUSTICE", 0.6)],
    "TECHNICAL COOPERATION": [
        ("CRIME PREVENTION", 0.6),
        ("CRIMINAL JUSTICE", 0.6),
        ("RULE OF LAW", 0.3),
    ],
    "HUMAN RIGHTS": [
        ("RULE OF LAW", 0.15),
        ("WOMEN'S RIGHTS", 0.1),
        ("RIGHTS OF THE CHILD", 0.1),
        ("PEACEKEEPING OPERATIONS", 0.06),
        ("INDIGENOUS PEOPLES", 0.04),
        ("PERSONS WITH DISABILITIES", 0.04),
    ],
    "WOMEN'S RIGHTS": [
        ("HUMAN RIGHTS", 0.3),
        ("VIOLENCE AGAINST WOMEN", 0.15),
        ("EDUCATION", 0.1),
        ("EMPLOYMENT", 0.1),
        ("PEACEBUILDING", 0.06),
    ],
    "RIGHTS OF THE CHILD": [
        ("HUMAN RIGHTS", 0.3),
        ("EDUCATION", 0.2),
        ("PUBLIC HEALTH", 0.15),
        ("JUVENILE JUSTICE", 0.05),
    ],
    "EDUCATION": [
        ("RIGHTS OF THE CHILD", 0.2),
        ("SUSTAINABLE DEVELOPMENT", 0.15),
        ("WOMEN'S RIGHTS", 0.12),
        ("EMPLOYMENT", 0.1),
        ("REFUGEES", 0.06),
    ],
    "PUBLIC HEALTH": [
        ("SUSTAINABLE DEVELOPMENT", 0.12),
        ("FOOD SECURITY", 0.1),
        ("RIGHTS OF THE CHILD", 0.1),
        ("HUMANITARIAN ASSISTANCE", 0.08),
        ("WATER RESOURCES", 0.06),
    ],
    "SUSTAINABLE DEVELOPMENT": [
        ("POVERTY", 0.35),
        ("ENVIRONMENT", 0.2),
        ("CLIMATE CHANGE", 0.2),
        ("INTERNATIONAL TRADE", 0.12),
    ],
    "POVERTY": [("SUSTAINABLE DEVELOPMENT", 0.45), ("FOOD SECURITY", 0.15), ("EMPLOYMENT", 0.15)],
    "ENVIRONMENT": [
        ("CLIMATE CHANGE", 0.35),
        ("SUSTAINABLE DEVELOPMENT", 0.3),
        ("WATER RESOURCES", 0.1),
        ("INDIGENOUS PEOPLES", 0.05),
    ],
    "CLIMATE CHANGE": [
        ("ENVIRONMENT", 0.4),
        ("SUSTAINABLE DEVELOPMENT", 0.25),
        ("DISASTER RISK REDUCTION", 0.12),
        ("FOOD SECURITY", 0.1),
    ],
    "FOOD SECURITY": [
        ("HUMANITARIAN ASSISTANCE", 0.25),
        ("POVERTY", 0.2),
        ("SUSTAINABLE DEVELOPMENT", 0.2),
        ("CLIMATE CHANGE", 0.15),
        ("PUBLIC HEALTH", 0.1),
    ],
    "WATER RESOURCES": [
        ("ENVIRONMENT", 0.5),
        ("SUSTAINABLE DEVELOPMENT", 0.4),
        ("PUBLIC HEALTH", 0.2),
    ],
    "PEACEKEEPING OPERATIONS": [
        ("PEACEBUILDING", 0.3),
        ("HUMAN RIGHTS", 0.2),
        ("RULE OF LAW", 0.12),
        ("HUMANITARIAN ASSISTANCE", 0.1),
    ],
    "PEACEBUILDING": [
        ("PEACEKEEPING OPERATIONS", 0.25),
        ("RULE OF LAW", 0.25),
        ("WOMEN'S RIGHTS", 0.1),
        ("DISARMAMENT", 0.06),
    ],
    "HUMANITARIAN ASSISTANCE": [
        ("FOOD SECURITY", 0.25),
        ("REFUGEES", 0.25),
        ("PUBLIC HEALTH", 0.12),
        ("DISASTER RISK REDUCTION", 0.1),
    ],
    "REFUGEES": [
        ("HUMANITARIAN ASSISTANCE", 0.35),
        ("MIGRATION", 0.25),
        ("HUMAN RIGHTS", 0.2),
        ("EDUCATION", 0.1),
    ],
    "MIGRATION": [
        ("HUMAN RIGHTS", 0.25),
        ("EMPLOYMENT", 0.15),
        ("REFUGEES", 0.15),
        ("MIGRANT SMUGGLING", 0.08),
    ],
    "INTERNATIONAL TRADE": [
        ("SUSTAINABLE DEVELOPMENT", 0.3),
        ("POVERTY", 0.1),
        ("EMPLOYMENT", 0.1),
    ],
    "DISASTER RISK REDUCTION": [
        ("CLIMATE CHANGE", 0.5),
        ("SUSTAINABLE DEVELOPMENT", 0.3),
        ("HUMANITARIAN ASSISTANCE", 0.3),
    ],
    "INDIGENOUS PEOPLES": [("HUMAN RIGHTS", 0.7), ("ENVIRONMENT", 0.3)],
    "PERSONS WITH DISABILITIES": [("HUMAN RIGHTS", 0.7), ("EDUCATION", 0.3), ("EMPLOYMENT", 0.2)],
    "DISARMAMENT": [("PEACEBUILDING", 0.3), ("FIREARMS", 0.2)],
    "EMPLOYMENT": [
        ("POVERTY", 0.3),
        ("SUSTAINABLE DEVELOPMENT", 0.25),
        ("WOMEN'S RIGHTS", 0.15),
        ("MIGRATION", 0.1),
    ],
}

# The subjects of crime and criminal justice (the banks of data/sample_banks/crime.txt).
CRIME = {
    "CRIME PREVENTION",
    "CRIMINAL JUSTICE",
    "RULE OF LAW",
    "TRANSNATIONAL CRIME",
    "ORGANIZED CRIME",
    "CORRUPTION",
    "TERRORISM",
    "TRAFFICKING IN PERSONS",
    "DRUG CONTROL",
    "MIGRANT SMUGGLING",
    "MONEY LAUNDERING",
    "CYBERCRIME",
    "VIOLENCE AGAINST WOMEN",
    "PRISONS",
    "FIREARMS",
    "JUVENILE JUSTICE",
    "FORENSIC SCIENCE",
}
# probability of each cross-cutting tag, for crime documents and for the others
CROSS_P = {
    True: {
        "INTERNATIONAL COOPERATION": 0.3,
        "TECHNICAL COOPERATION": 0.3,
        "DATA COLLECTION": 0.08,
        "RECOMMENDATIONS": 0.22,
    },
    False: {
        "INTERNATIONAL COOPERATION": 0.12,
        "TECHNICAL COOPERATION": 0.1,
        "DATA COLLECTION": 0.08,
        "RECOMMENDATIONS": 0.14,
    },
}
# the programme overviews: two fixed tags, then two or three of these (by weight)
PROGRAMME_FIXED = ["CRIME PREVENTION", "CRIMINAL JUSTICE"]
PROGRAMME_MORE = {
    "TECHNICAL COOPERATION": 6,
    "INTERNATIONAL COOPERATION": 5,
    "RULE OF LAW": 4,
    "TRANSNATIONAL CRIME": 4,
    "ORGANIZED CRIME": 4,
    "RECOMMENDATIONS": 4,
    "DATA COLLECTION": 3,
}
PROGRAMME_TOPICS = [
    "预防犯罪和刑事司法",
    "联合国预防犯罪和刑事司法方案",
    "预防犯罪和刑事司法领域的技术援助",
]
PROGRAMME_TITLES = [
    "联合国预防犯罪和刑事司法方案的执行情况：秘书长的报告",
    "毒品和犯罪问题办公室年度活动概览",
    "预防犯罪和刑事司法领域的技术援助：综合报告",
    "毒品和犯罪问题办公室在预防犯罪和加强刑事司法方面的工作：秘书长的报告",
    "预防犯罪和刑事司法委员会{session}会议：秘书处关于方案活动的说明",
]

BODIES = {
    "crime": ["预防犯罪和刑事司法委员会", "经济及社会理事会", "大会"],
    "drugs": ["麻醉药品委员会", "经济及社会理事会"],
    "rights": ["人权理事会", "大会"],
    "other": ["大会", "经济及社会理事会"],
}
RIGHTS = {
    "HUMAN RIGHTS",
    "WOMEN'S RIGHTS",
    "RIGHTS OF THE CHILD",
    "INDIGENOUS PEOPLES",
    "PERSONS WITH DISABILITIES",
}

COUNTRIES = (
    "肯尼亚 尼日利亚 加纳 塞内加尔 马里 尼日尔 乍得 埃塞俄比亚 坦桑尼亚 乌干达 莫桑比克 赞比亚 "
    "南非 埃及 摩洛哥 突尼斯 约旦 黎巴嫩 伊拉克 阿富汗 巴基斯坦 孟加拉国 尼泊尔 斯里兰卡 "
    "印度尼西亚 菲律宾 越南 柬埔寨 老挝 缅甸 泰国 蒙古 哈萨克斯坦 吉尔吉斯斯坦 塔吉克斯坦 "
    "乌兹别克斯坦 格鲁吉亚 摩尔多瓦 阿尔巴尼亚 塞尔维亚 哥伦比亚 秘鲁 玻利维亚 厄瓜多尔 "
    "巴拉圭 墨西哥 危地马拉 洪都拉斯 萨尔瓦多 巴拿马 多米尼加共和国 牙买加 海地 斐济 "
    "巴布亚新几内亚 瓦努阿图 马尔代夫"
).split()
REGIONS = (
    "西非 东非 南部非洲 萨赫勒地区 北非和中东 南亚 东南亚 中亚 东南欧 中美洲 加勒比 "
    "安第斯地区 太平洋岛屿地区 大湖区"
).split()
CITIES = (
    "维也纳 日内瓦 纽约 内罗毕 曼谷 多哈 京都 亚的斯亚贝巴 圣地亚哥 达喀尔 阿布扎比 巴拿马城"
).split()
HEADINGS = "一 二 三 四 五 六".split()

# ---------------------------------------------------------------------------------------
# The banks


@dataclass
class Bank:
    actors: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    crime_sentences: list[str] = field(default_factory=list)  # only in crime documents


KEYS = {
    "actor": "actors",
    "topic": "topics",
    "title": "titles",
    "action": "actions",
    "crime": "crime_sentences",
}


def read_banks(folder: Path = BANKS) -> dict[str, Bank]:
    """Every ``[NAME]`` section of the ``*.txt`` files in ``folder``, in file order."""
    banks: dict[str, Bank] = {}
    for path in sorted(folder.glob("*.txt")):
        bank = None
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                name = line[1:-1]
                if name in banks:
                    raise SystemExit(f"{path}:{number}: section [{name}] defined twice")
                bank = banks[name] = Bank()
                continue
            if bank is None:
                raise SystemExit(f"{path}:{number}: text before the first [SECTION]")
            key, sep, rest = line.partition(":")
            if sep and key in KEYS:
                getattr(bank, KEYS[key]).append(rest.strip())
            else:
                bank.sentences.append(line)
    return banks


# ---------------------------------------------------------------------------------------
# Filling slots

CN_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1..99 in Chinese numerals (二十八, 七十九)."""
    tens, units = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else CN_DIGITS[tens] + "十")
    return head + (CN_DIGITS[units] if units else "") if n >= 10 else CN_DIGITS[n]


SLOT = re.compile(r"\{(\w+)\}")


class Filler:
    """Fills the ``{slots}`` of one sentence at a time; a name repeated within a sentence
    gets one value, ``{country}``/``{country2}`` are different countries, ``{y2}`` follows
    ``{y}``."""

    def __init__(self, rng: random.Random, doc: Doc) -> None:
        self.rng, self.doc = rng, doc

    def __call__(self, template: str, **fixed: str) -> str:
        values: dict[str, str] = dict(fixed)
        countries = self.rng.sample(COUNTRIES, 3)
        if self.doc.country:
            countries = [self.doc.country] + [c for c in countries if c != self.doc.country]
        rng = self.rng

        def value(name: str) -> str:
            if name in values:
                return values[name]
            if name in ("country", "country2"):
                v = countries[0 if name == "country" else 1]
            elif name == "region":
                v = rng.choice(REGIONS)
            elif name == "city":
                v = rng.choice(CITIES)
            elif name == "y":
                v = str(rng.randint(2016, 2023))
            elif name == "y2":
                v = str(int(value("y")) + rng.randint(1, 3))
            elif name == "n":
                v = str(rng.randint(3, 60))
            elif name == "n2":
                v = str(rng.randint(2, 12))
            elif name == "big":
                v = str(rng.choice([rng.randint(120, 990), rng.randint(100, 990) * 10]))
            elif name == "pct":
                v = str(rng.randint(8, 65))
            elif name == "parties":
                v = str(rng.randint(181, 191))
            elif name == "res":
                v = f"{rng.randint(70, 79)}/{rng.randint(101, 330)}"
            elif name == "session":
                v = f"第{chinese_number(rng.randint(20, 79))}届"
            elif name == "item":
                v = str(rng.randint(20, 140))
            elif name == "item2":
                v = str(rng.randint(2, 10))
            elif name == "topic":
                v = self.doc.topic
            elif name == "actor":
                v = self.doc.actor
            elif name == "body":
                v = rng.choice(BODIES[self.doc.cluster])
            elif name in ("action", "action2"):
                v = self.doc.next_action(rng)
            else:
                raise SystemExit(f"unknown slot {{{name}}} in {template!r}")
            values[name] = v
            return v

        return SLOT.sub(lambda m: value(m.group(1)), template)


# ---------------------------------------------------------------------------------------
# Documents


@dataclass
class Doc:
    primary: str  # a tag, or PROGRAMME
    tags: list[str]
    kind: str  # report, note, resolution
    cluster: str
    topic: str = ""
    actor: str = "秘书处"
    country: str = ""
    actions: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def next_action(self, rng: random.Random) -> str:
        fresh = [a for a in self.actions if a not in self.used] or self.actions
        action = rng.choice(fresh)
        self.used.add(action)
        return action


def draw_tags(rng: random.Random, primary: str) -> list[str]:
    if primary == PROGRAMME:
        more = list(PROGRAMME_MORE)
        weights = [PROGRAMME_MORE[t] for t in more]
        extra: list[str] = []
        wanted = rng.randint(PROGRAMME_TAGS[0], PROGRAMME_TAGS[1]) - len(PROGRAMME_FIXED)
        while len(extra) < wanted:
            pick = rng.choices(more, weights)[0]
            if pick not in extra:
                extra.append(pick)
        return PROGRAMME_FIXED + extra
    tags = [primary]
    for tag, p in RELATED.get(primary, []):
        if rng.random() < p:
            tags.append(tag)
    for tag, p in CROSS_P[primary in CRIME].items():
        if tag not in tags and rng.random() < p:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        tags = [tags[0]] + rng.sample(tags[1:], MAX_TAGS - 1)
    return tags


def cluster_of(primary: str) -> str:
    if primary == "DRUG CONTROL":
        return "drugs"
    if primary in CRIME or primary == PROGRAMME or primary in CROSS:
        return "crime"
    return "rights" if primary in RIGHTS else "other"


def subjects(doc: Doc) -> list[str]:
    """The tags whose banks give the document its paragraphs (all but RECOMMENDATIONS)."""
    return [t for t in doc.tags if t != "RECOMMENDATIONS"]


# Wording that may change without changing the meaning: (pattern, alternatives, how often)
VARIANTS = [
    (re.compile(p), alternatives, share)
    for p, alternatives, share in [
        ("报告所述期间", ["本报告所涉期间", "本报告期内"], 0.4),
        ("许多国家", ["不少国家", "很多国家"], 0.4),
        ("一些国家", ["部分国家", "若干国家"], 0.4),
        ("秘书长强调", ["秘书长指出"], 0.5),
        ("往往", ["常常", "通常"], 0.4),
        ("仍然", ["依然", "仍"], 0.4),
        ("大幅", ["明显"], 0.4),
        ("显著", ["明显"], 0.4),
        ("(?<!联合国)毒品和犯罪问题办公室", ["联合国毒品和犯罪问题办公室"], 0.15),
    ]
]
# how a sentence may follow another in a paragraph
CONNECTIVES = ["此外，", "与此同时，", "另外，", "值得注意的是，", "同时，"]


def vary(rng: random.Random, sentence: str) -> str:
    for pattern, alternatives, share in VARIANTS:
        sentence = pattern.sub(partial(_choose, rng, alternatives, share), sentence)
    return sentence


def _choose(rng: random.Random, alternatives: list[str], share: float, m: re.Match) -> str:
    return rng.choice(alternatives) if rng.random() < share else m.group(0)


def make_paragraph(
    rng: random.Random, fill: Filler, banks: dict[str, Bank], doc: Doc, tag: str
) -> str:
    bank = banks[tag]
    pool = bank.sentences + (bank.crime_sentences if doc.cluster in ("crime", "drugs") else [])
    fresh = [s for s in pool if s not in doc.used] or pool
    k = min(len(fresh), rng.choices([1, 2, 3], [0.1, 0.55, 0.35])[0])
    chosen = rng.sample(fresh, k)
    doc.used.update(chosen)
    sentences = [vary(rng, fill(s)) for s in chosen]
    for i in range(1, len(sentences)):
        if rng.random() < 0.2:
            sentences[i] = rng.choice(CONNECTIVES) + sentences[i]
    return "".join(sentences)


def plan_paragraphs(rng: random.Random, doc: Doc, count: int) -> list[str]:
    """Which bank each body paragraph comes from."""
    if doc.primary == PROGRAMME:
        tagged = [t for t in doc.tags if t != "RECOMMENDATIONS"]
        crime = sorted(CRIME - {"VIOLENCE AGAINST WOMEN", "FORENSIC SCIENCE", "JUVENILE JUSTICE"})
        pool = (
            tagged * 3
            + crime
            + ["INTERNATIONAL COOPERATION", "TECHNICAL COOPERATION", "DATA COLLECTION"]
        )
        return PROGRAMME_FIXED + [rng.choice(pool) for _ in range(count - len(PROGRAMME_FIXED))]
    subs = subjects(doc)
    plan = [doc.primary] * max(2, count // 2)
    plan += subs[1:]
    while len(plan) < count:
        plan.append(rng.choice([doc.primary] + subs))
    plan = plan[:1] + rng.sample(plan[1:], len(plan) - 1)
    # now and then a paragraph on a related subject the document is not tagged with
    untagged = [t for t, _ in RELATED.get(doc.primary, []) if t not in doc.tags]
    if untagged and len(plan) > 3 and rng.random() < 0.2:
        plan[rng.randrange(2, len(plan))] = rng.choice(untagged)
    return plan


def make_document(rng: random.Random, banks: dict[str, Bank], primary: str) -> tuple[Doc, list]:
    """A document as its tags and a list of blocks: ("line", text) unnumbered lines (header,
    title, summary, preamble), ("heading", text) section headings, ("para", text) numbered
    paragraphs."""
    tags = draw_tags(rng, primary)
    kind = (
        "report"
        if primary == PROGRAMME
        else rng.choices(["report", "note", "resolution"], [0.55, 0.25, 0.2])[0]
    )
    if kind == "resolution" and "RECOMMENDATIONS" in tags:
        tags.remove("RECOMMENDATIONS")  # a resolution decides; it does not recommend
    doc = Doc(primary, tags, kind, cluster_of(primary))
    main = (
        banks[primary]
        if primary != PROGRAMME
        else Bank(actors=["毒品和犯罪问题办公室"], topics=PROGRAMME_TOPICS, titles=PROGRAMME_TITLES)
    )
    # a cross-cutting tag is about something: its document's topic is its first subject's
    about = next((t for t in tags[1:] if t not in CROSS), "CRIME PREVENTION")
    doc.topic = rng.choice(banks[about].topics if primary in CROSS else main.topics)
    if main.actors:
        doc.actor = rng.choice(main.actors)
    elif primary in CROSS:
        doc.actor = "毒品和犯罪问题办公室"
    for tag in subjects(doc):
        doc.actions += banks[tag].actions
    if kind == "note":
        doc.country = rng.choice(COUNTRIES)
    fill = Filler(rng, doc)
    frames = {name: banks[name].sentences for name in banks if name.startswith("_")}
    blocks: list[tuple[str, str]] = []

    if kind == "resolution":
        who = "大会" if doc.cluster in ("other", "rights") or rng.random() < 0.5 else fill("{body}")
        blocks.append(("line", fill(rng.choice(frames["_RESOLUTION_TITLE"]), who=who)))
        preamble = [fill(s) for s in rng.sample(frames["_PREAMBLE"], rng.randint(2, 4))]
        bank = banks[primary if primary != PROGRAMME else "CRIME PREVENTION"]
        noted = vary(rng, fill(rng.choice(bank.sentences))).rstrip("。")
        preamble.insert(rng.randint(1, len(preamble)), f"关切地注意到{noted}，")
        blocks.append(("line", who + "，" + "".join(preamble)))
        operative = frames["_OPERATIVE"][:-1]
        for clause in rng.sample(operative, min(len(operative), rng.randint(4, 6))):
            blocks.append(("para", fill(clause)))
        blocks.append(("para", frames["_OPERATIVE"][-1]))
        return doc, blocks

    titles = main.titles if kind == "report" and main.titles else frames["_NOTE_TITLE"]
    title = fill(rng.choice(titles))
    if kind == "report" and rng.random() < 0.6:
        blocks.append(("line", fill(rng.choice(frames["_HEADER"]))))
    blocks.append(("line", title))
    intro = fill(rng.choice(frames["_REPORT_INTRO" if kind == "report" else "_NOTE_INTRO"]))
    if "RECOMMENDATIONS" in doc.tags and rng.random() < 0.7:
        intro += fill(rng.choice(frames["_REC_INTRO"]))
    blocks.append(("line", ("摘要 " if kind == "report" else "") + intro))
    count = rng.randint(8, 12) if primary == PROGRAMME else rng.randint(4, 8)
    plan = plan_paragraphs(rng, doc, count)
    headed = kind == "report" and rng.random() < 0.7
    section = 0
    for i, tag in enumerate(plan):
        if headed and (i == 0 or (i == len(plan) // 2 and len(plan) >= 6)):
            name = "导言" if i == 0 else fill(rng.choice(banks[tag].topics or [doc.topic]))
            blocks.append(("heading", f"{HEADINGS[section]}. {name}"))
            section += 1
        blocks.append(("para", make_paragraph(rng, fill, banks, doc, tag)))
    if "RECOMMENDATIONS" in doc.tags:
        if headed:
            blocks.append(("heading", f"{HEADINGS[section]}. 结论和建议"))
        recs = banks["RECOMMENDATIONS"].sentences
        for _ in range(rng.choice([1, 2, 2])):
            blocks.append(("para", "".join(fill(s) for s in rng.sample(recs, rng.randint(1, 2)))))
    elif rng.random() < 0.5:
        if headed:
            blocks.append(("heading", f"{HEADINGS[section]}. 结论"))
        blocks.append(("para", fill(rng.choice(frames["_CLOSING"]))))
    return doc, blocks


# ---------------------------------------------------------------------------------------
# Layouts

LAYOUTS = ("segmented", "oneline", "multiline")


def segment(text: str) -> str:
    import jieba

    jieba.setLogLevel(logging.ERROR)
    return " ".join(w for w in jieba.cut(text) if w.strip())


def render(blocks: list[tuple[str, str]], layout: str, rng: random.Random) -> str:
    """The text of a document (everything after the header line and the blank line)."""
    numbered = layout != "multiline" or rng.random() < 0.6
    pieces: list[str] = []
    number = 0
    for kind, text in blocks:
        if kind == "para":
            number += 1
            if layout == "segmented":
                pieces.append(f"{number}. {segment(text)}")
            else:
                pieces.append(f"{number}. {text}" if numbered else text)
        elif layout == "segmented":
            pieces.append(segment(text))
        else:
            pieces.append(text)
    if layout == "segmented":
        return " " + " ".join(pieces)
    return (" " if layout == "oneline" else "\n").join(pieces)


def slug(primary: str, kind: str) -> str:
    name = "crime_programme" if primary == PROGRAMME else re.sub(r"[^a-z]+", "_", primary.lower())
    return name.strip("_") + ("" if kind == "report" else f"_{kind}")


# ---------------------------------------------------------------------------------------


def generate(out: Path, seed: int = SEED, documents: int = DOCUMENTS) -> dict:
    rng = random.Random(seed)
    banks = read_banks()
    missing = [
        t
        for t in list(PRIMARY) + [t for r in RELATED.values() for t, _ in r]
        if t != PROGRAMME and t not in banks
    ]
    if missing:
        raise SystemExit(f"no bank for {sorted(set(missing))}")
    # main subjects: each as often as its weight says (largest remainders), in random order
    total = sum(PRIMARY.values())
    quotas = {t: w * documents / total for t, w in PRIMARY.items()}
    counts = {t: int(q) for t, q in quotas.items()}
    short = documents - sum(counts.values())
    for t in sorted(quotas, key=lambda t: counts[t] - quotas[t])[:short]:
        counts[t] += 1
    primaries = [t for t, c in counts.items() for _ in range(c)]
    rng.shuffle(primaries)
    layouts = [LAYOUTS[i % 3] for i in range(documents)]
    rng.shuffle(layouts)

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.txt"):
        old.unlink()
    tag_counts: Counter[str] = Counter()
    per_doc: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    chars = 0
    for i, (primary, layout) in enumerate(zip(primaries, layouts, strict=True), 1):
        doc, blocks = make_document(rng, banks, primary)
        text = render(blocks, layout, rng)
        header = "%%%" + "|".join(doc.tags) + "|"
        (out / f"{i:03d}_{slug(primary, doc.kind)}.txt").write_text(
            f"{header}\n\n{text}\n", encoding="utf-8"
        )
        tag_counts.update(doc.tags)
        per_doc[len(doc.tags)] += 1
        kinds[doc.kind] += 1
        chars += len(re.sub(r"\s", "", text))
    stats = {
        "documents": documents,
        "tags": tag_counts,
        "per_doc": per_doc,
        "kinds": kinds,
        "layouts": Counter(layouts),
        "chars": chars,
        "seed": seed,
        "bytes": sum(p.stat().st_size for p in out.glob("*.txt")),
    }
    (out / "README.md").write_text(readme(stats), encoding="utf-8")
    return stats


def readme(s: dict) -> str:
    tags: Counter[str] = s["tags"]
    counts = sorted(tags.values())
    n = s["documents"]
    share = {k: f"{v / n:.0%}" for k, v in s["layouts"].items()}
    per_doc = ", ".join(f"{v} with {k}" for k, v in sorted(s["per_doc"].items()))
    rare = sum(1 for c in counts if c <= 6)
    table = "\n".join(f"| {t} | {c} |" for t, c in tags.most_common())
    kinds = s["kinds"]
    return f"""# Demo corpus

What `make run` trains the default model on. (The tests train on their own corpus,
`tests/data/sample/`, and only `tests/test_demo_corpus.py` reads this one.)

{n} short Simplified-Chinese documents in the style of UN documents — secretariat reports
({kinds["report"]}), country notes ({kinds["note"]}) and resolutions ({kinds["resolution"]}) —
tagged with {len(tags)} upper-case UNBIS-like subject terms. Among them are all nine of the
seed document's own tags (the seed is a report on the UN crime prevention and criminal
justice programme):

    {", ".join(THE_SEEDS_TAGS[:5])},
    {", ".join(THE_SEEDS_TAGS[5:])}

so a model trained here suggests them when such a report is pasted into the page.

**Written for this project.** Every sentence comes from the paragraph banks in
`data/sample_banks/`; `data/make_sample.py` composes the documents from them. Names, figures
and symbols are illustrative, not quotations of real documents. **Do not edit these files
by hand**: change the banks or the script and regenerate (deterministic, seed {s["seed"]}):

    .venv/bin/python data/make_sample.py           # or: make sample
    .venv/bin/python data/make_sample.py --check   # is data/sample/ the script's output?

## Format

The seed's: one UTF-8 file per document, `NNN_subject[_kind].txt`; line 1 is
`%%%TAG1|TAG2|`, line 2 is empty, the text starts on line 3. Three layouts, a third each:

- seed form ({share["segmented"]}): one line, jieba-segmented with single spaces, a leading
  space, inline ` 1. ` ` 2. ` paragraph markers;
- raw one-line ({share["oneline"]}): unsegmented, inline markers;
- raw multi-line ({share["multiline"]}): one paragraph per line, numbered or not.

Reports open with a header line, a title and a summary, and most have section headings
(`一. 导言`); a document tagged RECOMMENDATIONS ends with recommendations (and its summary
usually says so); no other document ends with recommendations.

## Shape

- {n} documents, {s["chars"]:,} characters of text without spaces, {s["bytes"] / 1e6:.1f} MB.
- Tags per document: {per_doc}. Documents carry 1 to 4 tags, except the overviews of the
  crime programme, which, like the seed (nine), are indexed with 5 to 7.
- Documents per tag: min {counts[0]}, median {statistics.median(counts):g}, max
  {counts[-1]}; a long tail ({rare} tags on 6 documents or fewer).
- Tags co-occur as in UNBIS indexing: CRIME PREVENTION with CRIMINAL JUSTICE, RULE OF LAW and
  TECHNICAL COOPERATION; TRANSNATIONAL CRIME with ORGANIZED CRIME; CLIMATE CHANGE with
  ENVIRONMENT; … (`RELATED` in the script).

| tag | documents |
|---|---|
{table}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write (data/sample)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--documents", type=int, default=DOCUMENTS)
    parser.add_argument(
        "--check", action="store_true", help="write to a temporary folder and compare with --out"
    )
    args = parser.parse_args(argv)
    if not args.check:
        s = generate(args.out, args.seed, args.documents)
        wrote = f"wrote {s['documents']} documents, {len(s['tags'])} tags to {args.out}"
        print(wrote)  # noqa: T201
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), args.seed, args.documents)
        names = sorted(p.name for p in Path(tmp).iterdir())
        if sorted(p.name for p in args.out.iterdir()) != names:
            print(f"{args.out}: other files than the generator writes")  # noqa: T201
            return 1
        _, mismatch, errors = filecmp.cmpfiles(tmp, args.out, names, shallow=False)
        if mismatch or errors:
            differ = mismatch + errors
            print(f"{args.out}: differs from the generator's output: {differ}")  # noqa: T201
            return 1
    print(f"{args.out} is the generator's output")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
