"""Generate the Chinese evaluation set: teaching diagrams in images/, questions.jsonl and answers.jsonl.

Deterministic and offline: matplotlib with the CJK fonts of Debian's fonts-wqy-microhei and fonts-noto-cjk
packages (found by path), fixed seeds, no network. It does not know real OCR output: it only draws the text.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Arc, Circle, Ellipse, FancyArrowPatch, FancyBboxPatch, Patch, Polygon, Rectangle
from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGE_DIR = HERE / "images"
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 6.0, 100  # 800 x 600 pixels
CANVAS_W, CANVAS_H = 100.0, 66.0  # data units of the drawing area used by diagrams (8 px per unit)
PNG_COLOURS = 96  # palette PNGs: a few colours are enough for flat charts and keep the set small
FONT_FILES = {  # style name -> font file from Debian's packages (the first face of a .ttc is used)
    "hei": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "sans": "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "sans-bold": "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "serif": "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
}
FONT_STYLES = ["hei", "hei", "sans", "serif"]  # drawn in turn per image (seeded), so most images use WenQuanYi
PALETTES = [
    ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"],
    ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4"],
    ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#f39c12", "#16a085", "#d35400", "#2c3e50", "#7f8c8d"],
]
MONTHS = [f"{month}月" for month in range(1, 13)]
Point = tuple[float, float]


@dataclass
class Spec:
    """One image to draw: `body` holds the data its `kind` renderer needs; questions are (category, text)."""

    key: str
    kind: str
    title: str
    body: dict[str, Any]
    questions: list[tuple[str, str]]
    group: str | None = None
    file: str = field(default="", init=False)


def load_fonts() -> dict[str, str]:
    """Register the CJK fonts with matplotlib: style name -> font family; exit with one line if one is missing."""
    missing = [path for path in FONT_FILES.values() if not Path(path).is_file()]
    if missing:
        sys.exit(
            f"make_eval_zh.py needs CJK fonts, missing {', '.join(missing)}: "
            "apt-get install fonts-wqy-microhei fonts-noto-cjk"
        )
    families = {}
    for style, path in FONT_FILES.items():
        font_manager.fontManager.addfont(path)
        families[style] = font_manager.FontProperties(fname=path).get_name()
    return families


# ---------------------------------------------------------------- near-duplicate families (data + templates)

TEMPERATURE_C = {  # approximate monthly mean temperatures (°C), rounded, for teaching only
    "北京": [-3.1, 0.3, 6.7, 14.8, 20.8, 24.9, 26.7, 25.5, 20.8, 13.7, 5.0, -0.9],
    "上海": [4.8, 6.4, 10.0, 15.5, 20.8, 24.6, 28.7, 28.3, 24.8, 19.8, 13.9, 7.6],
    "广州": [13.9, 15.2, 18.4, 22.6, 26.0, 27.8, 28.9, 28.8, 27.6, 25.0, 20.5, 15.6],
    "哈尔滨": [-17.6, -12.6, -3.6, 7.5, 15.5, 21.1, 23.2, 21.6, 15.5, 6.4, -5.2, -14.4],
    "昆明": [9.0, 11.2, 14.7, 17.8, 19.9, 20.0, 20.2, 19.7, 18.3, 15.9, 12.3, 9.3],
    "拉萨": [-0.7, 2.5, 6.0, 9.3, 13.3, 16.7, 16.4, 15.5, 13.8, 9.0, 3.7, 0.0],
    "乌鲁木齐": [-12.0, -9.7, -0.6, 10.5, 17.3, 22.2, 24.1, 22.7, 16.9, 7.9, -2.0, -9.4],
    "武汉": [4.0, 6.6, 11.0, 17.3, 22.4, 26.1, 29.1, 28.4, 24.2, 18.4, 11.9, 6.1],
}
TEMPERATURE_QUESTIONS = {
    "北京": [("family", "北京7月平均气温是多少度？")],
    "上海": [("family", "上海一年里哪个月平均气温最高？"), ("family", "上海1月平均气温")],
    "广州": [("colloquial", "广州冬天冷不冷？"), ("family", "广州各月平均气温")],
    "哈尔滨": [("colloquial", "哈尔滨冬天有多冷"), ("number", "哪个城市1月平均气温是-17.6°C？")],
    "昆明": [("colloquial", "昆明是不是一年四季都不冷不热？"), ("family", "昆明12月平均气温")],
    "拉萨": [("literal", "拉萨各月平均气温"), ("family", "拉萨6月的平均气温是多少")],
    "乌鲁木齐": [("family", "乌鲁木齐4月平均气温多少")],
    "武汉": [("colloquial", "武汉的夏天到底有多热"), ("number", "7月平均气温29.1°C的是哪个城市")],
}
TEMPERATURE_EXTRA = [("family", "北京和哈尔滨1月的平均气温差多少？", ["北京", "哈尔滨"])]

POPULATION_YEARS = ["2000年", "2005年", "2010年", "2015年", "2020年"]
POPULATION_WAN = {  # resident population in 万人 (10,000 people), approximate
    "河北省": [6744, 6851, 7194, 7425, 7461],
    "河南省": [9256, 9380, 9405, 9480, 9937],
    "山东省": [9079, 9248, 9588, 9847, 10153],
    "江苏省": [7438, 7588, 7869, 7976, 8475],
    "广东省": [8642, 9194, 10441, 10849, 12601],
    "四川省": [8329, 8212, 8045, 8204, 8367],
    "湖南省": [6440, 6326, 6570, 6783, 6644],
}
POPULATION_QUESTIONS = {
    "河北省": [("family", "河北省2020年常住人口是多少？")],
    "河南省": [("colloquial", "河南现在大概住着多少人"), ("number", "哪个省2020年常住人口9937万？")],
    "山东省": [("colloquial", "山东人口有没有超过一个亿"), ("family", "山东省2005年的常住人口")],
    "江苏省": [("family", "江苏2010年常住人口")],
    "广东省": [("colloquial", "这二十年广东多了多少人？"), ("family", "广东省常住人口2015年是多少万")],
    "四川省": [("number", "8045万是哪个省的人口？")],
    "湖南省": [("literal", "湖南省常住人口变化")],
}
POPULATION_EXTRA = [("family", "河北和河南哪个省的人口更多？", ["河北省", "河南省"])]

GRAIN_YEARS = ["2017", "2018", "2019", "2020", "2021", "2022"]
GRAIN_PROVINCES = ["黑龙江", "河南", "山东", "安徽", "吉林", "河北", "江苏", "内蒙古"]
GRAIN_2021 = [7868, 6544, 5501, 4088, 4039, 3825, 3746, 3840]  # 万吨, approximate
GRAIN_FACTOR = {"2017": 0.95, "2018": 0.96, "2019": 0.975, "2020": 0.985, "2021": 1.0, "2022": 1.012}
GRAIN_QUESTIONS = {
    "2017": [("family", "2017年黑龙江粮食产量是多少？")],
    "2018": [("family", "2018年河南产了多少万吨粮食")],
    "2019": [("family", "2019年山东的粮食产量")],
    "2020": [("colloquial", "2020年哪个省打的粮食最多？")],
    "2021": [("literal", "2021年部分省份粮食产量"), ("family", "2021年吉林省粮食产量")],
    "2022": [("family", "2022年安徽省粮食产量多少万吨？")],
}
GRAIN_EXTRA = [("family", "吉林省2019年和2020年的粮食产量对比", ["2019", "2020"])]

CLIMATE = {  # city -> (climate type, monthly mean °C, monthly precipitation mm), approximate normals
    "新加坡": (
        "热带雨林气候",
        [26.5, 27.1, 27.5, 28.0, 28.3, 28.3, 27.9, 27.9, 27.6, 27.6, 26.9, 26.4],
        [242, 162, 185, 179, 172, 162, 158, 176, 169, 194, 256, 288],
    ),
    "开罗": (
        "热带沙漠气候",
        [14, 15, 17, 21, 24, 27, 28, 28, 26, 23, 19, 15],
        [5, 4, 4, 1, 0, 0, 0, 0, 0, 1, 3, 6],
    ),
    "伦敦": (
        "温带海洋性气候",
        [5, 5, 7, 9, 13, 16, 18, 18, 15, 12, 8, 6],
        [55, 41, 42, 44, 49, 45, 45, 50, 49, 69, 59, 55],
    ),
    "莫斯科": (
        "温带大陆性气候",
        [-6.5, -6.7, -1.0, 6.7, 13.2, 17.0, 19.2, 17.0, 11.3, 5.6, -1.2, -5.2],
        [52, 41, 35, 37, 49, 80, 85, 82, 68, 71, 55, 52],
    ),
    "孟买": (
        "热带季风气候",
        [24, 25, 27, 29, 30, 29, 28, 28, 28, 29, 28, 26],
        [1, 0, 0, 1, 11, 580, 840, 585, 340, 90, 15, 4],
    ),
    "罗马": (
        "地中海气候",
        [8, 9, 11, 14, 18, 22, 25, 25, 22, 17, 12, 9],
        [67, 73, 58, 81, 53, 34, 19, 33, 68, 94, 130, 92],
    ),
}
CLIMATE_QUESTIONS = {
    "新加坡": [("family", "新加坡一年的降水量有多少？"), ("entity", "热带雨林气候")],
    "开罗": [("colloquial", "开罗是不是几乎不下雨？")],
    "伦敦": [("entity", "温带海洋性气候的气温和降水资料"), ("family", "伦敦年降水量多少毫米")],
    "莫斯科": [("family", "莫斯科的年平均气温是多少")],
    "孟买": [("colloquial", "孟买的雨季集中在哪几个月"), ("literal", "孟买气候资料图")],
    "罗马": [("entity", "地中海气候是夏天少雨吗")],
}


def annual(city: str) -> tuple[float, int]:
    """Annual mean temperature (one decimal) and annual precipitation (mm) printed on a climate chart."""
    _, temperatures, rain = CLIMATE[city]
    return round(sum(temperatures) / 12, 1), sum(rain)


def grain_values(year: str) -> list[int]:
    """Deterministic per-year variation of the 2021 figures: a national trend plus a small seeded wobble."""
    rng = random.Random(f"grain-{year}")
    return [round(base * GRAIN_FACTOR[year] * (1 + rng.uniform(-0.025, 0.025))) for base in GRAIN_2021]


def temperature_family() -> list[Spec]:
    return [
        Spec(
            f"temperature:{city}",
            "line",
            f"{city}各月平均气温",
            {"labels": MONTHS, "values": values, "axis": "平均气温（°C）", "slant": 45},
            TEMPERATURE_QUESTIONS[city],
            group="temperature",
        )
        for city, values in TEMPERATURE_C.items()
    ]


def population_family() -> list[Spec]:
    return [
        Spec(
            f"population:{province}",
            "bar",
            f"{province}常住人口（2000—2020年）",
            {
                "labels": POPULATION_YEARS,
                "values": values,
                "value_labels": [f"{value}万" for value in values],
                "axis": "常住人口（万人）",
                "floor": 0,
            },
            POPULATION_QUESTIONS[province],
            group="population",
        )
        for province, values in POPULATION_WAN.items()
    ]


def grain_family() -> list[Spec]:
    return [
        Spec(
            f"grain:{year}",
            "bar",
            f"{year}年部分省份粮食产量",
            {"labels": GRAIN_PROVINCES, "values": grain_values(year), "axis": "粮食产量（万吨）", "slant": 35},
            GRAIN_QUESTIONS[year],
            group="grain",
        )
        for year in GRAIN_YEARS
    ]


def climate_family() -> list[Spec]:
    specs = []
    for city, (climate, temperatures, rain) in CLIMATE.items():
        mean, total = annual(city)
        body = {
            "temperatures": temperatures,
            "rain": rain,
            "note": f"年平均气温 {mean}°C\n年降水量 {total}毫米",
        }
        specs.append(
            Spec(
                f"climate:{city}", "climate", f"{city}气候资料图（{climate}）", body, CLIMATE_QUESTIONS[city], "climate"
            )
        )
    return specs


FAMILY_EXTRAS = {"temperature": TEMPERATURE_EXTRA, "population": POPULATION_EXTRA, "grain": GRAIN_EXTRA}


# ---------------------------------------------------------------- single images: science

SCIENCE = [
    Spec(
        "plant_cell",
        "diagram",
        "植物细胞结构示意图",
        {
            "shapes": [
                ("rect", 25, 5, 50, 56, "#9ccc65"),
                ("rect", 27, 7, 46, 52, "#eef7e0"),
                ("ellipse", 55, 33, 26, 34, "#cfe8f7"),
                ("circle", 37, 46, 6, "#c9a0dc"),
                ("circle", 37, 46, 2, "#7e57c2"),
                ("ellipse", 33, 20, 7, 4, "#43a047"),
                ("ellipse", 42, 12, 7, 4, "#43a047"),
                ("ellipse", 66, 54, 7, 4, "#43a047"),
                ("ellipse", 33, 31, 5, 2.5, "#f4a261"),
                ("ellipse", 64, 12, 5, 2.5, "#f4a261"),
            ],
            "labels": [
                ("细胞壁", (25.6, 56), (14, 60)),
                ("细胞膜", (27.4, 45), (14, 50)),
                ("细胞核", (34, 47), (14, 40)),
                ("线粒体", (31, 31), (14, 28)),
                ("细胞质", (34, 9), (14, 14)),
                ("液泡", (60, 38), (88, 42)),
                ("叶绿体", (67, 54), (88, 58)),
            ],
        },
        [
            ("entity", "液泡在哪里"),
            ("entity", "叶绿体和线粒体都在植物细胞的什么地方？"),
        ],
    ),
    Spec(
        "animal_cell",
        "diagram",
        "动物细胞结构示意图",
        {
            "shapes": [
                ("ellipse", 50, 32, 58, 46, "#fde2c8"),
                ("circle", 47, 34, 8, "#c9a0dc"),
                ("circle", 47, 34, 2.5, "#5e35b1"),
                ("ellipse", 64, 44, 9, 4.5, "#ef6c00"),
                ("ellipse", 36, 20, 9, 4.5, "#ef6c00"),
                ("arc", 60, 24, 14, 8, 200, 340, "#8e24aa"),
                ("arc", 60, 26, 12, 6, 200, 340, "#8e24aa"),
                ("arc", 34, 42, 12, 10, 90, 200, "#00897b"),
                ("circle", 56, 16, 0.8, "#37474f"),
                ("circle", 59, 14, 0.8, "#37474f"),
                ("circle", 53, 13, 0.8, "#37474f"),
            ],
            "labels": [
                ("细胞膜", (50, 55), (22, 60)),
                ("细胞核", (45, 38), (14, 36)),
                ("线粒体", (33, 20), (14, 18)),
                ("内质网", (30, 44), (14, 50)),
                ("高尔基体", (66, 22), (86, 26)),
                ("线粒体", (68, 44), (86, 46)),
                ("核糖体", (57, 15), (80, 8)),
                ("细胞质", (70, 34), (86, 36)),
            ],
        },
        [("entity", "高尔基体")],
    ),
    Spec(
        "earth_layers",
        "diagram",
        "地球的内部圈层结构",
        {
            "shapes": [
                ("circle", 34, 32, 29, "#8d6e63"),
                ("circle", 34, 32, 27.5, "#ff8a65"),
                ("circle", 34, 32, 15, "#ffb74d"),
                ("circle", 34, 32, 7, "#e53935"),
            ],
            "labels": [
                ("地壳", (54, 53), (70, 60)),
                ("莫霍界面（约33千米）", (53, 51), (70, 53)),
                ("地幔", (48, 45), (70, 45)),
                ("古登堡界面（约2900千米）", (45, 42), (70, 37)),
                ("外核", (42, 32), (70, 29)),
                ("内核", (34, 32), (70, 21)),
                ("地核", None, (22, 6)),
                ("地心 6371千米", (34, 32), (70, 10)),
            ],
        },
        [
            ("entity", "地幔在地球的哪一层？"),
            ("number", "古登堡界面在地下多少千米"),
            ("colloquial", "地球里面分成几层？"),
        ],
    ),
    Spec(
        "circuit",
        "diagram",
        "简单电路的组成",
        {
            "shapes": [
                ("line", [(20, 12), (20, 54), (80, 54), (80, 12), (56, 12)], "#333333", 2.5),
                ("line", [(44, 12), (20, 12)], "#333333", 2.5),
                ("line", [(44, 12), (55, 18)], "#333333", 2.5),
                ("circle", 44, 12, 0.8, "#333333"),
                ("circle", 56, 12, 0.8, "#333333"),
                ("rect", 14, 30, 12, 8, "#ffffff"),
                ("line", [(14, 36), (26, 36)], "#333333", 3),
                ("line", [(17, 32), (23, 32)], "#333333", 6),
                ("circle", 80, 34, 4, "#fff59d"),
                ("line", [(77.2, 31.2), (82.8, 36.8)], "#333333", 1.5),
                ("line", [(77.2, 36.8), (82.8, 31.2)], "#333333", 1.5),
                ("arrow", (38, 57), (62, 57), "#e53935"),
            ],
            "labels": [
                ("电池（电源）", (26, 36), (32, 42)),
                ("开关", (50, 15), (50, 22)),
                ("小灯泡（用电器）", (76, 34), (66, 26)),
                ("导线", (50, 54), (50, 46)),
                ("电流方向", None, (50, 62)),
            ],
        },
        [("entity", "电路里的开关有什么用"), ("colloquial", "怎么连电线才能让小灯泡亮起来")],
    ),
    Spec(
        "series_parallel",
        "diagram",
        "串联电路和并联电路",
        {
            "shapes": [
                ("line", [(6, 12), (6, 48), (44, 48), (44, 12), (6, 12)], "#333333", 2),
                ("circle", 18, 48, 3, "#fff59d"),
                ("circle", 32, 48, 3, "#fff59d"),
                ("rect", 22, 10, 6, 4, "#ffffff"),
                ("line", [(56, 12), (56, 52), (94, 52), (94, 12), (56, 12)], "#333333", 2),
                ("line", [(56, 36), (94, 36)], "#333333", 2),
                ("circle", 75, 52, 3, "#fff59d"),
                ("circle", 75, 36, 3, "#fff59d"),
                ("rect", 72, 10, 6, 4, "#ffffff"),
            ],
            "labels": [
                ("串联电路", None, (25, 60)),
                ("并联电路", None, (75, 60)),
                ("L1", None, (18, 42)),
                ("L2", None, (32, 42)),
                ("L1", None, (75, 45.5)),
                ("L2", None, (75, 29.5)),
                ("电池", None, (25, 6)),
                ("电池", None, (75, 6)),
                ("电流只有一条路径", None, (25, 28)),
                ("电流有两条路径", None, (75, 22)),
            ],
        },
        [("mixed", "串联和并联 circuit 有什么区别")],
    ),
    Spec(
        "states_of_matter",
        "flow",
        "物质的三态变化",
        {
            "nodes": [("固态", 18, 12), ("液态", 82, 12), ("气态", 50, 54)],
            "edges": [
                (0, 1, "熔化（吸热）"),
                (1, 0, "凝固（放热）"),
                (1, 2, "汽化（吸热）"),
                (2, 1, "液化（放热）"),
                (0, 2, "升华（吸热）"),
                (2, 0, "凝华（放热）"),
            ],
        },
        [
            ("entity", "升华是从什么状态变成什么状态？"),
            ("colloquial", "冰不经过化成水直接变成水蒸气叫什么"),
        ],
    ),
    Spec(
        "dna",
        "diagram",
        "DNA 双螺旋结构（DNA double helix）",
        {
            "shapes": [
                ("helix", 10, 90, 33, 14, 0.0, "#1e88e5"),
                ("helix", 10, 90, 33, 14, np.pi, "#e53935"),
                ("rungs", 10, 90, 33, 14, 12),
            ],
            "labels": [
                ("碱基互补配对 Base pairing", (33.3, 36), (33.3, 60)),
                ("磷酸-脱氧核糖骨架 Backbone", (40, 19.5), (40, 5)),
                ("氢键 Hydrogen bond", (73.3, 30), (73.3, 60)),
                ("A—T  G—C", None, (82, 8)),
            ],
        },
        [
            ("mixed", "碱基互补配对 base pairing 的规则"),
            ("entity", "氢键连接的是什么"),
        ],
    ),
    Spec(
        "water_cycle",
        "flow",
        "水循环示意图",
        {"cycle": ["蒸发", "水汽输送", "降水", "地表径流", "下渗", "地下径流"]},
        [("colloquial", "下雨以后雨水都去哪儿了？"), ("literal", "水循环示意图 蒸发 降水")],
    ),
    Spec(
        "mitosis",
        "flow",
        "细胞有丝分裂的过程",
        {
            "chain": [
                "间期\nDNA复制",
                "前期\n出现染色体",
                "中期\n着丝粒排列\n在赤道板上",
                "后期\n着丝粒分裂",
                "末期\n形成两个子细胞",
            ]
        },
        [("entity", "赤道板")],
    ),
    Spec(
        "oxygen_lab",
        "flow",
        "实验室用高锰酸钾（KMnO4）制取氧气",
        {
            "chain": [
                "① 检查装置\n气密性",
                "② 装入药品",
                "③ 固定试管",
                "④ 点燃酒精灯\n加热",
                "⑤ 排水法\n收集氧气",
                "⑥ 把导管\n移出水面",
                "⑦ 熄灭酒精灯",
            ]
        },
        [
            ("colloquial", "做完制氧气实验为什么要先把管子从水里拿出来"),
            ("mixed", "用KMnO4制O2的实验步骤"),
        ],
    ),
    Spec(
        "sound_speed",
        "bar",
        "声音在不同介质中的传播速度（15°C）",
        {
            "labels": ["空气", "软木", "水", "铜", "钢铁"],
            "values": [340, 500, 1500, 3750, 5200],
            "axis": "速度（米/秒）",
            "horizontal": True,
        },
        [("number", "声音在水中的传播速度是多少"), ("literal", "声音在不同介质中的传播速度")],
    ),
    Spec(
        "densities",
        "table",
        "常见物质的密度",
        {
            "columns": ["物质", "密度（g/cm³）", "物质", "密度（g/cm³）"],
            "rows": [
                ["水", "1.0", "铁", "7.9"],
                ["冰", "0.9", "铜", "8.9"],
                ["酒精", "0.8", "水银", "13.6"],
                ["铝", "2.7", "金", "19.3"],
            ],
        },
        [("number", "铁的密度是多少"), ("entity", "水银")],
    ),
    Spec(
        "elements",
        "table",
        "元素周期表前10号元素",
        {
            "columns": ["原子序数", "名称", "符号", "英文名称"],
            "rows": [
                ["1", "氢", "H", "Hydrogen"],
                ["2", "氦", "He", "Helium"],
                ["3", "锂", "Li", "Lithium"],
                ["4", "铍", "Be", "Beryllium"],
                ["5", "硼", "B", "Boron"],
                ["6", "碳", "C", "Carbon"],
                ["7", "氮", "N", "Nitrogen"],
                ["8", "氧", "O", "Oxygen"],
                ["9", "氟", "F", "Fluorine"],
                ["10", "氖", "Ne", "Neon"],
            ],
        },
        [("mixed", "Ne 是什么元素？"), ("mixed", "Oxygen 的原子序数是几")],
    ),
    Spec(
        "heating_curve",
        "line",
        "冰熔化和水沸腾时温度的变化",
        {
            "labels": ["0", "2", "4", "6", "8", "10", "12", "14", "16"],
            "values": [-20, -5, 0, 0, 0, 35, 75, 100, 100],
            "axis": "温度（°C）",
            "xlabel": "加热时间（分钟）",
            "notes": [("熔化过程 0°C", 3, 10), ("沸腾过程 100°C", 7.3, 108)],
            "plain": True,
        },
        [("colloquial", "冰化成水的时候温度会变吗")],
    ),
    Spec(
        "air",
        "pie",
        "空气的成分（按体积计算）",
        {
            "labels": ["氮气", "氧气", "稀有气体", "二氧化碳", "其他气体和杂质"],
            "values": [78, 21, 0.94, 0.03, 0.03],
        },
        [("number", "空气中氧气占百分之几？"), ("colloquial", "我们呼吸的空气里最多的是什么")],
    ),
    Spec(
        "planets",
        "bar",
        "太阳系八大行星的直径",
        {
            "labels": ["水星", "金星", "地球", "火星", "木星", "土星", "天王星", "海王星"],
            "values": [4879, 12104, 12756, 6792, 142984, 120536, 51118, 49528],
            "axis": "直径（千米）",
            "slant": 40,
        },
        [("entity", "木星有多大"), ("number", "火星的直径是多少千米？")],
    ),
    Spec(
        "digestion",
        "diagram",
        "人体的消化系统",
        {
            "shapes": [
                ("ellipse", 50, 60, 10, 5, "#f8bbd0"),
                ("rect", 49, 40, 2, 18, "#f48fb1"),
                ("poly", [(52, 42), (62, 44), (64, 36), (56, 32), (50, 36)], "#ec407a"),
                ("poly", [(30, 44), (48, 42), (46, 34), (32, 36)], "#8d6e63"),
                ("circle", 44, 33, 1.8, "#66bb6a"),
                ("ellipse", 56, 29, 14, 3, "#ffcc80"),
                ("arc", 50, 16, 34, 26, 0, 360, "#ef9a9a"),
                ("ellipse", 50, 16, 20, 12, "#f8bbd0"),
                ("rect", 49, 0, 2, 4, "#a1887f"),
            ],
            "labels": [
                ("口腔", (50, 60), (30, 60)),
                ("食道", (50, 50), (70, 54)),
                ("胃", (60, 40), (80, 44)),
                ("肝脏", (36, 40), (14, 44)),
                ("胆囊", (44, 33), (14, 32)),
                ("胰腺", (60, 29), (80, 32)),
                ("大肠", (34, 14), (14, 18)),
                ("小肠", (50, 16), (80, 14)),
                ("肛门", (50, 2), (30, 3)),
            ],
            "fontsize": 16,
        },
        [("entity", "胃在哪"), ("colloquial", "吃进去的饭菜营养主要在哪里被吸收？")],
    ),
    Spec(
        "eye",
        "diagram",
        "眼球的结构",
        {
            "shapes": [
                ("circle", 52, 32, 22, "#fffde7"),
                ("arc", 52, 32, 44, 44, 200, 160, "#c62828"),
                ("arc", 33, 32, 12, 22, 110, 250, "#90caf9"),
                ("rect", 31, 38, 3, 6, "#6d4c41"),
                ("rect", 31, 20, 3, 6, "#6d4c41"),
                ("ellipse", 37, 32, 5, 12, "#b3e5fc"),
                ("rect", 73, 29, 18, 6, "#ffcc80"),
            ],
            "labels": [
                ("角膜", (28, 36), (12, 50)),
                ("虹膜", (32, 41), (18, 60)),
                ("瞳孔", (31, 32), (12, 32)),
                ("晶状体", (37, 26), (18, 12)),
                ("玻璃体", None, (56, 32)),
                ("视网膜", (66, 49), (82, 58)),
                ("视神经", (84, 32), (84, 20)),
            ],
        },
        [("entity", "晶状体在眼睛的哪个位置"), ("colloquial", "眼睛里成像的那层膜叫什么")],
    ),
    Spec(
        "food_chain",
        "flow",
        "草原生态系统中的一条食物链",
        {"chain": ["草\n（生产者）", "兔\n（初级消费者）", "狐\n（次级消费者）", "鹰\n（三级消费者）"]},
        [("entity", "兔吃什么？"), ("colloquial", "草原上谁吃狐狸")],
    ),
]

# ---------------------------------------------------------------- single images: maths

MATHS = [
    Spec(
        "quadratic",
        "graph",
        "二次函数 y = x² - 2x - 3 的图像",
        {
            "curves": [("y = x² - 2x - 3", lambda x: x**2 - 2 * x - 3)],
            "x": (-2.5, 4.5),
            "y": (-6, 6),
            "points": [
                ("顶点 (1, -4)", (1, -4), (1.3, -5.3)),
                ("(-1, 0)", (-1, 0), (-2.3, 1)),
                ("(3, 0)", (3, 0), (3.3, 1)),
            ],
            "vlines": [("对称轴 x = 1", 1)],
            "legend": "lower left",
        },
        [("entity", "抛物线的顶点坐标是多少"), ("colloquial", "那个开口朝上的抛物线和x轴交在哪")],
    ),
    Spec(
        "trig_graph",
        "graph",
        "正弦函数和余弦函数的图像",
        {
            "curves": [("y = sin x", np.sin), ("y = cos x", np.cos)],
            "x": (-2 * np.pi, 2 * np.pi),
            "y": (-1.6, 1.8),
            "pi_ticks": True,
            "notes": [("周期 T = 2π", 3.6, 1.45)],
        },
        [("mixed", "sin x 和 cos x 的函数图像")],
    ),
    Spec(
        "linear_inverse",
        "graph",
        "一次函数与反比例函数的图像",
        {
            "curves": [("y = 2x + 1", lambda x: 2 * x + 1), ("y = 6/x", lambda x: 6 / x)],
            "x": (-6, 6),
            "y": (-8, 10),
            "split_at_zero": True,
            "points": [("(1.5, 4)", (1.5, 4), (2.4, 5.2)), ("(-2, -3)", (-2, -3), (-4.8, -4.8))],
        },
        [("entity", "反比例函数的图像是什么样的"), ("number", "y=2x+1和y=6/x的交点坐标")],
    ),
    Spec(
        "pythagoras",
        "diagram",
        "勾股定理",
        {
            "shapes": [
                ("poly", [(15, 8), (55, 8), (15, 38)], "#bbdefb"),
                ("rect", 15, 8, 3, 3, "#ffffff"),
            ],
            "labels": [
                ("a = 3", None, (9, 23)),
                ("b = 4", None, (35, 4)),
                ("c = 5", None, (40, 26)),
                ("直角边", None, (9, 30)),
                ("斜边", None, (28, 36)),
                ("直角", (16.5, 9.5), (24, 16)),
                ("a² + b² = c²", None, (78, 40)),
                ("3² + 4² = 5²", None, (78, 30)),
                ("直角三角形两条直角边的\n平方和等于斜边的平方", None, (76, 14)),
            ],
            "fontsize": 16,
        },
        [("entity", "斜边是哪一条边"), ("colloquial", "直角三角形三条边的长度有什么关系？")],
    ),
    Spec(
        "circle_parts",
        "diagram",
        "圆的各部分名称",
        {
            "shapes": [
                ("circle", 34, 32, 24, "#e3f2fd"),
                ("line", [(34, 32), (58, 32)], "#1565c0", 2),
                ("line", [(34, 8), (34, 56)], "#2e7d32", 2),
                ("line", [(14.2, 45.8), (50, 49.9)], "#6a1b9a", 2),
                ("arc", 34, 32, 48, 48, 200, 250, "#ef6c00"),
                ("circle", 34, 32, 0.8, "#000000"),
            ],
            "labels": [
                ("圆心 O", (34, 32), (20, 28)),
                ("半径 r", None, (48, 35)),
                ("直径 d", (34, 46), (40, 60)),
                ("弦", (32, 47.8), (22, 58)),
                ("弧", (13, 22), (4, 14)),
                ("周长 C = 2πr", None, (80, 44)),
                ("面积 S = πr²", None, (80, 34)),
                ("d = 2r", None, (80, 24)),
            ],
        },
        [("literal", "圆的周长公式和面积公式"), ("colloquial", "直径和半径是什么关系")],
    ),
    Spec(
        "trig_table",
        "table",
        "特殊角的三角函数值",
        {
            "columns": ["角度 α", "30°", "45°", "60°"],
            "rows": [
                ["sin α", "1/2", "√2/2", "√3/2"],
                ["cos α", "√3/2", "√2/2", "1/2"],
                ["tan α", "√3/3", "1", "√3"],
            ],
        },
        [("mixed", "sin 30° 等于多少"), ("mixed", "tan 60° 的值")],
    ),
    Spec(
        "favourite_subject",
        "pie",
        "初二（3）班学生最喜欢的学科",
        {"labels": ["数学", "体育", "语文", "英语", "美术"], "values": [30, 25, 20, 15, 10]},
        [("number", "最喜欢数学的学生占百分之几")],
    ),
]

# ---------------------------------------------------------------- single images: history

HISTORY = [
    Spec(
        "dynasties",
        "timeline",
        "中国古代主要朝代的建立",
        {
            "events": [
                ("前221年", "秦统一六国"),
                ("前202年", "西汉建立"),
                ("581年", "隋朝建立"),
                ("618年", "唐朝建立"),
                ("960年", "北宋建立"),
                ("1271年", "元朝建立"),
                ("1368年", "明朝建立"),
                ("1644年", "清军入关"),
            ]
        },
        [("number", "唐朝是哪一年建立的？"), ("colloquial", "明朝从哪年开始的")],
    ),
    Spec(
        "modern_history",
        "timeline",
        "中国近代史大事年表",
        {
            "events": [
                ("1840年", "鸦片战争"),
                ("1894年", "甲午中日战争"),
                ("1898年", "戊戌变法"),
                ("1911年", "辛亥革命"),
                ("1919年", "五四运动"),
                ("1921年", "中国共产党成立"),
            ]
        },
        [("number", "1911年发生了什么"), ("colloquial", "推翻清朝的那次革命")],
    ),
    Spec(
        "inventions",
        "timeline",
        "近代科技发明（Inventions）",
        {
            "events": [
                ("1769年", "瓦特改良蒸汽机\nSteam engine"),
                ("1807年", "富尔顿发明汽船"),
                ("1876年", "贝尔发明电话\nTelephone"),
                ("1879年", "爱迪生发明电灯\nLight bulb"),
                ("1903年", "莱特兄弟\n发明飞机"),
            ]
        },
        [("mixed", "爱迪生的 light bulb 是哪一年发明的"), ("number", "1876年谁发明了什么")],
    ),
    Spec(
        "capitals",
        "table",
        "中国古代主要朝代的都城",
        {
            "columns": ["朝代", "都城", "今地"],
            "rows": [
                ["西周", "镐京", "陕西西安"],
                ["秦", "咸阳", "陕西咸阳"],
                ["西汉", "长安", "陕西西安"],
                ["东汉", "洛阳", "河南洛阳"],
                ["唐", "长安", "陕西西安"],
                ["北宋", "东京", "河南开封"],
                ["南宋", "临安", "浙江杭州"],
                ["明", "北京", "北京"],
            ],
        },
        [("entity", "临安是今天的哪里？"), ("colloquial", "北宋的首都在现在的什么地方")],
    ),
    Spec(
        "space",
        "timeline",
        "中国航天大事记",
        {
            "events": [
                ("1970年", "东方红一号\n人造卫星"),
                ("2003年", "神舟五号\n杨利伟进入太空"),
                ("2007年", "嫦娥一号\n绕月探测"),
                ("2020年", "嫦娥五号\n月球采样返回"),
                ("2021年", "天问一号\n祝融号登陆火星"),
                ("2022年", "天宫空间站\n全面建成"),
            ]
        },
        [
            ("colloquial", "中国第一个上太空的航天员是谁"),
            ("entity", "祝融号火星车"),
        ],
    ),
    Spec(
        "four_inventions",
        "table",
        "中国古代四大发明",
        {
            "columns": ["发明", "时期", "说明"],
            "rows": [
                ["造纸术", "东汉", "蔡伦改进造纸术"],
                ["印刷术", "北宋", "毕昇发明活字印刷"],
                ["指南针", "战国", "最早的指南工具司南"],
                ["火药", "唐朝", "炼丹家配制火药"],
            ],
        },
        [("entity", "毕昇"), ("literal", "中国古代四大发明")],
    ),
]

# ---------------------------------------------------------------- single images: geography

GEOGRAPHY = [
    Spec(
        "rivers",
        "bar",
        "我国主要河流的长度",
        {
            "labels": ["长江", "黄河", "珠江", "雅鲁藏布江", "海河", "淮河"],
            "values": [6300, 5464, 2320, 2057, 1090, 1000],
            "axis": "长度（千米）",
            "horizontal": True,
        },
        [("number", "黄河有多长？"), ("colloquial", "中国最长的河是哪条")],
    ),
    Spec(
        "mountains",
        "bar",
        "我国部分名山的海拔",
        {
            "labels": ["珠穆朗玛峰", "贡嘎山", "玉龙雪山", "华山", "黄山", "泰山"],
            "values": [8849, 7556, 5596, 2155, 1864, 1545],
            "axis": "海拔（米）",
            "horizontal": True,
        },
        [("number", "泰山海拔多少米")],
    ),
    Spec(
        "gdp",
        "bar",
        "2021年部分省份地区生产总值（GDP）",
        {
            "labels": ["广东", "江苏", "山东", "浙江", "河南", "四川"],
            "values": [12.4, 11.6, 8.3, 7.4, 5.9, 5.4],
            "value_labels": ["12.4万亿", "11.6万亿", "8.3万亿", "7.4万亿", "5.9万亿", "5.4万亿"],
            "axis": "GDP（万亿元）",
            "slant": 30,
            "floor": 0,
        },
        [("mixed", "2021年广东的 GDP 是多少"), ("number", "哪个省GDP是7.4万亿")],
    ),
    Spec(
        "china_population",
        "line",
        "我国历次人口普查的总人口",
        {
            "labels": ["1953年", "1964年", "1982年", "1990年", "2000年", "2010年", "2020年"],
            "values": [5.8, 6.9, 10.1, 11.3, 12.7, 13.4, 14.1],
            "value_labels": ["5.8亿", "6.9亿", "10.1亿", "11.3亿", "12.7亿", "13.4亿", "14.1亿"],
            "axis": "总人口（亿人）",
            "xlabel": "普查年份",
        },
        [
            ("colloquial", "中国人口什么时候超过10亿的"),
        ],
    ),
    Spec(
        "regions",
        "table",
        "我国四大地理区域的比较",
        {
            "columns": ["区域", "主要气候", "主要地形", "农业"],
            "rows": [
                ["北方地区", "温带季风气候", "平原、高原", "旱地"],
                ["南方地区", "亚热带季风气候", "丘陵、平原", "水田"],
                ["西北地区", "温带大陆性气候", "高原、盆地", "畜牧业、灌溉农业"],
                ["青藏地区", "高原山地气候", "高原、山地", "高寒牧业"],
            ],
        },
        [("colloquial", "南方种的是旱地还是水田"), ("entity", "西北地区是什么气候")],
    ),
    Spec(
        "terrain_steps",
        "diagram",
        "我国地势的三级阶梯",
        {
            "shapes": [
                ("poly", [(4, 4), (4, 44), (34, 44), (38, 26), (66, 26), (70, 12), (96, 12), (96, 4)], "#bcaaa4"),
            ],
            "labels": [
                ("第一级阶梯\n平均海拔4000米以上", None, (19, 52)),
                ("第二级阶梯\n海拔1000～2000米", None, (52, 34)),
                ("第三级阶梯\n海拔多在500米以下", None, (83, 20)),
                ("青藏高原", None, (19, 36)),
                ("内蒙古高原、黄土高原\n云贵高原、四川盆地", None, (52, 18)),
                ("东北平原\n华北平原", None, (83, 8)),
                ("昆仑山—祁连山—横断山", (36, 36), (45, 58)),
                ("大兴安岭—太行山—巫山—雪峰山", (68, 19), (68, 46)),
            ],
            "fontsize": 13,
        },
        [
            ("entity", "第二级阶梯有哪些高原和盆地"),
            ("number", "平均海拔4000米以上是哪一级阶梯"),
        ],
    ),
    Spec(
        "land_use",
        "pie",
        "我国土地利用类型构成（约数）",
        {"labels": ["草地", "林地", "耕地", "建设用地", "水域", "难利用土地"], "values": [28, 24, 13, 4, 3, 28]},
        [("entity", "我国耕地占土地面积的多少"), ("colloquial", "中国的地有多少是种庄稼的")],
    ),
]

SINGLES = SCIENCE + MATHS + HISTORY + GEOGRAPHY

SINGLE_ANSWERS = [  # (spec key, question, expected label or number, exactly as the image prints it)
    ("earth_layers", "古登堡界面大约在地下多少千米？", 2900),
    ("sound_speed", "声音在水中每秒传播多少米？", 1500),
    ("densities", "铁的密度是多少 g/cm³？", 7.9),
    ("air", "空气中氧气的体积分数是百分之几？", 21),
    ("planets", "火星的直径是多少千米？", 6792),
    ("rivers", "黄河全长多少千米？", 5464),
    ("mountains", "泰山海拔多少米？", 1545),
    ("dynasties", "唐朝是哪一年建立的？", 618),
    ("modern_history", "辛亥革命发生在哪一年？", 1911),
    ("gdp", "2021年广东省的地区生产总值是多少万亿元？", 12.4),
    ("china_population", "2020年人口普查全国总人口是多少亿？", 14.1),
    ("favourite_subject", "初二（3）班最喜欢体育的学生占百分之几？", 25),
    ("states_of_matter", "物质从气态直接变成固态叫什么？", "凝华"),
    ("elements", "元素符号 Ne 代表哪种元素？", "氖"),
    ("space", "乘神舟五号进入太空的航天员是谁？", "杨利伟"),
    ("capitals", "南宋的都城叫什么？", "临安"),
    ("four_inventions", "谁发明了活字印刷？", "毕昇"),
]
OFF_TOPIC = [  # nothing in the collection is about these; the last five sit near its topics but are in no image
    "红烧肉怎么做？",
    "2022年世界杯冠军是谁？",
    "周杰伦最新的专辑叫什么？",
    "今天北京天气怎么样？",
    "Python怎么读取Excel文件？",
    "怎么才能学好英语口语？",
    "高考志愿应该怎么填报？",
    "iPhone 16 多少钱？",
    "感冒了吃什么药好得快？",
    "王者荣耀怎么上分？",
    "中秋节的月饼有哪些口味？",
    "上海到杭州坐高铁要多久？",
    "深圳2021年的GDP是多少？",
    "西安7月的平均气温是多少？",
    "2023年河南的粮食产量是多少？",
    "秦始皇陵在哪里？",
]


# ---------------------------------------------------------------- drawing


@dataclass(frozen=True)
class Style:
    """Per-image look, drawn from a seeded generator so that images differ but reruns do not."""

    font: str
    title_font: str
    palette: list[str]
    title_size: int
    label_size: int
    title_left: bool


def style_for(spec: Spec, fonts: dict[str, str]) -> Style:
    rng = random.Random(spec.key)
    font = rng.choice(FONT_STYLES)
    title_font = fonts["sans"] if font == "sans" and rng.random() < 0.5 else fonts[font]
    return Style(
        font=fonts[font],
        title_font=title_font,
        palette=rng.choice(PALETTES),
        title_size=rng.choice([18, 20, 22]),
        label_size=rng.choice([13, 14, 15]),
        title_left=rng.random() < 0.3,
    )


def fmt(value: float) -> str:
    """A number as the charts print it: no trailing .0, no exponent."""
    return f"{value:g}" if abs(value) < 1e6 else str(int(value))


def style_axes(ax: Axes, style: Style) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=style.label_size)


def set_categories(ax: Axes, positions: list[int], labels: list[str], slant: int, axis: str = "x") -> None:
    """Category tick labels, slanted when asked (anchored at their right end, as spreadsheets draw them)."""
    if axis == "y":
        ax.set_yticks(positions, labels)
    elif slant:
        ax.set_xticks(positions, labels, rotation=slant, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(positions, labels)


def draw_bar(fig: Figure, body: dict[str, Any], style: Style) -> None:
    labels, values = body["labels"], body["values"]
    texts = body.get("value_labels") or [fmt(value) for value in values]
    top = max(values)
    colour = style.palette[0]
    if body.get("horizontal"):
        ax = fig.add_axes((0.24, 0.12, 0.66, 0.74))
        positions = list(range(len(values)))[::-1]
        ax.barh(positions, values, color=colour, height=0.6)
        set_categories(ax, positions, labels, 0, axis="y")
        for position, text, value in zip(positions, texts, values, strict=True):
            ax.text(value, position, f" {text}", va="center", fontsize=style.label_size - 1)
        ax.set_xlim(0, top * 1.22)
        ax.set_xlabel(body["axis"], fontsize=style.label_size)
    else:
        bottom = 0.2 if body.get("slant") else 0.12
        ax = fig.add_axes((0.15, bottom, 0.8, 0.86 - bottom))
        positions = list(range(len(values)))
        ax.bar(positions, values, color=colour, width=0.62)
        set_categories(ax, positions, labels, body.get("slant", 0))
        for position, text, value in zip(positions, texts, values, strict=True):
            ax.text(position, value + top * 0.01, text, ha="center", va="bottom", fontsize=style.label_size - 2)
        ax.set_ylim(body.get("floor", 0), top * 1.12)
        ax.set_ylabel(body["axis"], fontsize=style.label_size)
    style_axes(ax, style)


def draw_line(fig: Figure, body: dict[str, Any], style: Style) -> None:
    labels, values = body["labels"], body["values"]
    texts = body.get("value_labels") or [fmt(value) for value in values]
    bottom = 0.18 if body.get("slant") else 0.13
    ax = fig.add_axes((0.13, bottom, 0.83, 0.86 - bottom))
    positions = list(range(len(values)))
    ax.plot(positions, values, marker="o", color=style.palette[3], linewidth=2.5)
    span = max(values) - min(values)
    if not body.get("plain"):
        for position, text, value in zip(positions, texts, values, strict=True):
            ax.text(
                position,
                value + span * 0.04,
                text,
                ha="center",
                va="bottom",
                fontsize=style.label_size - 3,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
            )
    for text, x, y in body.get("notes", []):
        ax.text(x, y, text, ha="center", fontsize=style.label_size, color=style.palette[0])
    set_categories(ax, positions, labels, body.get("slant", 0))
    ax.set_ylim(min(values) - span * 0.1, max(values) + span * 0.18)
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_ylabel(body["axis"], fontsize=style.label_size)
    if "xlabel" in body:
        ax.set_xlabel(body["xlabel"], fontsize=style.label_size)
    ax.grid(axis="y", alpha=0.3)
    style_axes(ax, style)


def draw_climate(fig: Figure, body: dict[str, Any], style: Style) -> None:
    """A geography climate chart: monthly precipitation bars (right axis) under a temperature curve (left axis)."""
    ax = fig.add_axes((0.12, 0.12, 0.76, 0.74))
    rain_ax = ax.twinx()
    months = list(range(1, 13))
    rain_ax.bar(months, body["rain"], color=style.palette[0], alpha=0.75, width=0.6)
    rain_ax.set_ylim(0, max(max(body["rain"]) * 1.3, 100))
    rain_ax.set_ylabel("降水量（毫米）", fontsize=style.label_size)
    ax.set_zorder(rain_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    temperatures = body["temperatures"]
    ax.plot(months, temperatures, marker="o", color=style.palette[3], linewidth=2.5)
    ax.set_ylim(min(min(temperatures) - 5, 0), max(temperatures) + 12)
    ax.set_ylabel("气温（°C）", fontsize=style.label_size)
    ax.set_xticks(months, [str(month) for month in months])
    ax.set_xlabel("月份", fontsize=style.label_size)
    ax.tick_params(labelsize=style.label_size)
    rain_ax.tick_params(labelsize=style.label_size)
    ax.text(
        0.03,
        0.96,
        body["note"],
        transform=ax.transAxes,
        va="top",
        fontsize=style.label_size,
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#999999"},
    )


def draw_pie(fig: Figure, body: dict[str, Any], style: Style) -> None:
    labels, values = body["labels"], body["values"]
    ax = fig.add_axes((0.02, 0.04, 0.5, 0.8))
    wedges, _ = ax.pie(
        values,
        colors=style.palette[: len(values)],
        startangle=90,
        counterclock=False,
        wedgeprops={"edgecolor": "white", "linewidth": 1.5},
    )
    legend = [f"{label}  {fmt(value)}%" for label, value in zip(labels, values, strict=True)]
    ax.legend(
        wedges, legend, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=style.label_size + 2, frameon=False
    )


def canvas_axes(fig: Figure) -> Axes:
    """Axes for free drawing in CANVAS_W x CANVAS_H data units below the title."""
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.88))
    ax.set_xlim(0, CANVAS_W)
    ax.set_ylim(0, CANVAS_H)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def text_width(text: str) -> float:
    """Display width of the longest line in character cells: a CJK character is two cells wide."""
    return max(sum(2 if ord(char) > 0x2E80 else 1 for char in line) for line in text.split("\n"))


def arrow(ax: Axes, tail: Point, head: Point, colour: str = "#333333") -> None:
    ax.add_patch(FancyArrowPatch(tail, head, arrowstyle="-|>", mutation_scale=20, linewidth=2, color=colour))


def box_edge(center: Point, half: Point, toward: Point) -> np.ndarray:
    """Point where the ray from a box's center toward `toward` leaves the box (plus a small gap)."""
    start, direction = np.array(center), np.array(toward) - np.array(center)
    scale = min(
        half[0] / abs(direction[0]) if direction[0] else np.inf, half[1] / abs(direction[1]) if direction[1] else np.inf
    )
    return start + direction * scale + direction / np.linalg.norm(direction) * 1.0


def flow_layout(body: dict[str, Any]) -> tuple[list[tuple[str, float, float]], list[tuple[int, int, str]]]:
    """Nodes and edges: given, or a cycle around an ellipse, or a chain in left-right-left rows."""
    if "nodes" in body:
        return body["nodes"], body["edges"]
    if "cycle" in body:
        steps = body["cycle"]
        angles = [np.pi / 2 - 2 * np.pi * index / len(steps) for index in range(len(steps))]
        nodes = [(step, 50 + 34 * np.cos(a), 32 + 23 * np.sin(a)) for step, a in zip(steps, angles, strict=True)]
        edges = [(index, (index + 1) % len(steps), "") for index in range(len(steps))]
        return nodes, edges
    steps = body["chain"]
    per_row = 4 if len(steps) in (4, 7, 8) else 3
    rows = -(-len(steps) // per_row)
    nodes = []
    for index, step in enumerate(steps):
        row, column = divmod(index, per_row)
        if row % 2 == 1:
            column = per_row - 1 - column
        y = 33 if rows == 1 else 54 - row * (42 / (rows - 1))
        nodes.append((step, (column + 0.5) * CANVAS_W / per_row, y))
    return nodes, [(index, index + 1, "") for index in range(len(steps) - 1)]


def draw_flow(fig: Figure, body: dict[str, Any], style: Style) -> None:
    ax = canvas_axes(fig)
    nodes, edges = flow_layout(body)
    size = style.label_size + (3 if "nodes" in body else 0)
    widest = max(text_width(text) for text, _, _ in nodes)
    lines = max(text.count("\n") + 1 for text, _, _ in nodes)
    half = (widest * size * 0.045 + 1.5, lines * size * 0.11 + 1.2)
    for index, (text, x, y) in enumerate(nodes):
        ax.add_patch(
            FancyBboxPatch(
                (x - half[0], y - half[1]),
                2 * half[0],
                2 * half[1],
                boxstyle="round,pad=0,rounding_size=1.5",
                facecolor=style.palette[index % len(style.palette)],
                alpha=0.3,
                edgecolor="#333333",
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=size, linespacing=1.3)
    directed = {(a, b) for a, b, _ in edges}
    for a, b, label in edges:
        start, end = np.array(nodes[a][1:]), np.array(nodes[b][1:])
        normal = np.array([-(end - start)[1], (end - start)[0]]) / np.linalg.norm(end - start)
        if (b, a) in directed:  # a pair of opposite arrows: draw them side by side
            start, end = start + normal * 2.2, end + normal * 2.2
        tail, head = box_edge(tuple(start), half, tuple(end)), box_edge(tuple(end), half, tuple(start))
        arrow(ax, tuple(tail), tuple(head))
        if label:
            half_label = text_width(label) * (size - 3) * 0.022  # half its width in canvas units
            middle = (tail + head) / 2 + normal * (2.5 + half_label * abs(normal[0]) + 1.5 * abs(normal[1]))
            ax.text(*middle, label, ha="center", va="center", fontsize=size - 3, color=style.palette[2])


def shape_patches(shape: tuple) -> list[Patch]:
    kind, *args = shape
    line = {"edgecolor": "#333333", "linewidth": 1.2}
    if kind == "circle":
        x, y, radius, colour = args
        return [Circle((x, y), radius, facecolor=colour, **line)]
    if kind == "ellipse":
        x, y, width, height, colour = args
        return [Ellipse((x, y), width, height, facecolor=colour, **line)]
    if kind == "rect":
        x, y, width, height, colour = args
        return [Rectangle((x, y), width, height, facecolor=colour, **line)]
    if kind == "poly":
        points, colour = args
        return [Polygon(points, closed=True, facecolor=colour, **line)]
    if kind == "line":
        points, colour, width = args
        return [Polygon(points, closed=False, fill=False, edgecolor=colour, linewidth=width)]
    if kind == "arc":
        x, y, width, height, start, end, colour = args
        return [Arc((x, y), width, height, theta1=start, theta2=end, color=colour, linewidth=4)]
    if kind == "arrow":
        tail, head, colour = args
        return [FancyArrowPatch(tail, head, arrowstyle="-|>", mutation_scale=20, linewidth=2, color=colour)]
    if kind == "helix":  # one strand of a double helix drawn left to right
        left, right, middle, amplitude, phase, colour = args
        xs = np.linspace(left, right, 200)
        ys = middle + amplitude * np.sin((xs - left) / (right - left) * 4 * np.pi + phase)
        return [Polygon(np.column_stack([xs, ys]), closed=False, fill=False, edgecolor=colour, linewidth=4)]
    if kind == "rungs":  # base pairs between the two strands of a helix
        left, right, middle, amplitude, count = args
        patches: list[Patch] = []
        for index in range(count):
            x = left + (index + 0.5) * (right - left) / count
            y = amplitude * np.sin((x - left) / (right - left) * 4 * np.pi)
            colour = ["#43a047", "#fb8c00", "#8e24aa", "#fdd835"][index % 4]
            pair = [(x, middle + y), (x, middle - y)]
            patches.append(Polygon(pair, closed=False, fill=False, edgecolor=colour, linewidth=3))
        return patches
    raise ValueError(f"unknown shape {kind}")


def draw_diagram(fig: Figure, body: dict[str, Any], style: Style) -> None:
    ax = canvas_axes(fig)
    for shape in body["shapes"]:
        for patch in shape_patches(shape):
            ax.add_patch(patch)
    size = body.get("fontsize", style.label_size)
    box = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    for text, point, (tx, ty) in body["labels"]:
        if point is None:
            ax.text(tx, ty, text, ha="center", va="center", fontsize=size, bbox=box, linespacing=1.3)
            continue
        align = "right" if tx < point[0] - 0.5 else "left" if tx > point[0] + 0.5 else "center"
        ax.annotate(
            text,
            xy=point,
            xytext=(tx, ty),
            ha=align,
            va="center",
            fontsize=size,
            bbox=box,
            arrowprops={"arrowstyle": "-", "linewidth": 1.2, "color": "#222222"},
        )


def draw_graph(fig: Figure, body: dict[str, Any], style: Style) -> None:
    """Function graphs on axes through the origin, with labelled points and lines."""
    ax = fig.add_axes((0.08, 0.07, 0.86, 0.8))
    (x0, x1), (y0, y1) = body["x"], body["y"]
    for index, (label, function) in enumerate(body["curves"]):
        xs = np.linspace(x0, x1, 600)
        pieces = [xs[xs < -0.05], xs[xs > 0.05]] if body.get("split_at_zero") else [xs]
        colour = style.palette[index * 3]
        for piece_index, piece in enumerate(pieces):
            ys = function(piece)
            keep = (ys > y0) & (ys < y1)
            ax.plot(piece[keep], ys[keep], color=colour, linewidth=2.5, label=label if piece_index == 0 else None)
    for text, (px, py), (tx, ty) in body.get("points", []):
        ax.plot([px], [py], "o", color="#333333")
        ax.annotate(text, xy=(px, py), xytext=(tx, ty), fontsize=style.label_size)
    for text, x in body.get("vlines", []):
        ax.axvline(x, color="#888888", linestyle="--")
        ax.text(x + 0.15, y1 * 0.85, text, fontsize=style.label_size)
    for text, x, y in body.get("notes", []):
        ax.text(x, y, text, fontsize=style.label_size + 1)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    for side in ("left", "bottom"):
        ax.spines[side].set_position("zero")
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    if body.get("pi_ticks"):
        ticks = [-2 * np.pi, -np.pi, np.pi, 2 * np.pi]
        ax.set_xticks(ticks, ["-2π", "-π", "π", "2π"])
    ax.text(x1, 0, " x", va="center", fontsize=style.label_size + 1)
    ax.text(0, y1, "y", ha="center", va="bottom", fontsize=style.label_size + 1)
    ax.tick_params(labelsize=style.label_size - 2)
    ax.grid(alpha=0.25)
    ax.legend(loc=body.get("legend", "lower right"), fontsize=style.label_size, frameon=True)


def draw_timeline(fig: Figure, body: dict[str, Any], style: Style) -> None:
    ax = canvas_axes(fig)
    events = body["events"]
    ax.add_patch(FancyArrowPatch((2, 33), (98, 33), arrowstyle="-|>", mutation_scale=25, linewidth=3, color="#555555"))
    step = 92 / len(events)
    size = style.label_size if len(events) <= 6 else style.label_size - 1
    for index, (year, text) in enumerate(events):
        x = 4 + step * (index + 0.5)
        side = 1 if index % 2 == 0 else -1
        ax.add_patch(Circle((x, 33), 1.2, facecolor=style.palette[index % len(style.palette)], edgecolor="#333333"))
        ax.plot([x, x], [33 + side * 1.2, 33 + side * 8], color="#777777", linewidth=1.5)
        ax.text(x, 33 + side * 9, year, ha="center", va="bottom" if side > 0 else "top", fontsize=size + 1)
        ax.text(
            x, 33 + side * 15, text, ha="center", va="bottom" if side > 0 else "top", fontsize=size, linespacing=1.3
        )


def draw_table(fig: Figure, body: dict[str, Any], style: Style) -> None:
    ax = canvas_axes(fig)
    columns, rows = body["columns"], body["rows"]
    widths = [max(text_width(cell) for cell in [name] + [row[i] for row in rows]) + 4 for i, name in enumerate(columns)]
    scale = min(94 / sum(widths), 2.6)
    widths = [width * scale for width in widths]
    row_height = min(8.0, 62 / (len(rows) + 1))
    fontsize = style.label_size if row_height >= 5.5 else style.label_size - 1
    left = (CANVAS_W - sum(widths)) / 2
    header = style.palette[0]
    for row_index, row in enumerate([columns] + rows):
        y = CANVAS_H - 2 - (row_index + 1) * row_height
        x = left
        fill = header if row_index == 0 else ("#f2f2f2" if row_index % 2 == 0 else "white")
        for width, cell in zip(widths, row, strict=True):
            ax.add_patch(Rectangle((x, y), width, row_height, facecolor=fill, edgecolor="#666666", alpha=0.9))
            ax.text(
                x + width / 2,
                y + row_height / 2,
                cell,
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if row_index == 0 else "black",
            )
            x += width


RENDERERS: dict[str, Callable[[Figure, dict[str, Any], Style], None]] = {
    "bar": draw_bar,
    "line": draw_line,
    "climate": draw_climate,
    "pie": draw_pie,
    "flow": draw_flow,
    "diagram": draw_diagram,
    "graph": draw_graph,
    "timeline": draw_timeline,
    "table": draw_table,
}


def render(spec: Spec, style: Style, path: Path) -> None:
    """Draw one spec to an 800x600 palette PNG (no metadata, so reruns give identical bytes)."""
    matplotlib.rcParams.update({"font.family": style.font, "axes.unicode_minus": False})
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    title = {"fontsize": style.title_size, "fontfamily": style.title_font, "y": 0.955}
    if style.title_left:
        fig.text(0.04, 0.955, spec.title, ha="left", va="top", **{k: v for k, v in title.items() if k != "y"})
    else:
        fig.suptitle(spec.title, **title)
    RENDERERS[spec.kind](fig, spec.body, style)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    image.quantize(colors=PNG_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


# ---------------------------------------------------------------- assembly


def all_specs() -> list[Spec]:
    """Every image, named by kind and running number so that file names do not give topics away."""
    specs = temperature_family() + population_family() + grain_family() + climate_family() + SINGLES
    counters: dict[str, int] = {}
    for spec in specs:
        counters[spec.kind] = counters.get(spec.kind, 0) + 1
        spec.file = f"{spec.kind}_{counters[spec.kind]:02d}.png"
    return specs


def question_rows(specs: list[Spec]) -> list[dict[str, Any]]:
    """Per-image questions, then the family questions whose answer is several images."""
    by_key = {spec.key: spec for spec in specs}
    rows = [{"q": text, "a": spec.file, "category": category} for spec in specs for category, text in spec.questions]
    for group, extras in FAMILY_EXTRAS.items():
        for category, text, members in extras:
            files = [by_key[f"{group}:{member}"].file for member in members]
            rows.append({"q": text, "a": files[0] if len(files) == 1 else files, "category": category})
    return rows


def family_answers(by_key: dict[str, Spec]) -> list[tuple[str, str, str | float]]:
    """(spec key, question, expected) on the families, read from the data each image is drawn from."""
    rows: list[tuple[str, str, str | float]] = []
    for city, month in (("哈尔滨", 0), ("广州", 6), ("昆明", 11)):
        question = f"{city}{MONTHS[month]}的平均气温是多少摄氏度？"
        rows.append((f"temperature:{city}", question, TEMPERATURE_C[city][month]))
    for province, year in (("河南省", "2020年"), ("四川省", "2010年"), ("广东省", "2015年")):
        question = f"{province}{year}的常住人口是多少万人？"
        rows.append((f"population:{province}", question, POPULATION_WAN[province][POPULATION_YEARS.index(year)]))
    for year, province in (("2020", "黑龙江"), ("2018", "河南")):
        question = f"{year}年{province}的粮食产量是多少万吨？"
        rows.append((f"grain:{year}", question, grain_values(year)[GRAIN_PROVINCES.index(province)]))
    rows.append(("climate:新加坡", "新加坡的年降水量是多少毫米？", annual("新加坡")[1]))
    rows.append(("climate:开罗", "开罗的年平均气温是多少摄氏度？", annual("开罗")[0]))
    return rows


def strings(value: Any) -> Iterator[str]:
    """Every string and number inside a spec's body (numbers as the charts print them)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool):
        return
    elif isinstance(value, int | float):
        yield fmt(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def answer_rows(specs: list[Spec]) -> list[dict[str, Any]]:
    """Answerable questions (category "on-topic") with their expected label or number, then off-topic ones."""
    by_key = {spec.key: spec for spec in specs}
    rows = []
    for key, question, expected in family_answers(by_key) + SINGLE_ANSWERS:
        spec = by_key[key]
        printed = expected if isinstance(expected, str) else fmt(expected)
        if printed not in "\n".join([spec.title, *strings(spec.body)]):
            raise AssertionError(f"{spec.file} does not print the expected answer {printed!r} to {question!r}")
        rows.append({"q": question, "a": spec.file, "answer": expected, "category": "on-topic"})
    rows += [{"q": question, "a": None, "category": "off-topic"} for question in OFF_TOPIC]
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def count(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + 1
    return counts


def main() -> None:
    fonts = load_fonts()
    IMAGE_DIR.mkdir(parents=True, exist_ok=True)
    for old in IMAGE_DIR.glob("*.png"):
        old.unlink()
    specs = all_specs()
    for spec in specs:
        render(spec, style_for(spec, fonts), IMAGE_DIR / spec.file)
    images = [{"file": spec.file, "kind": spec.kind, "title": spec.title, "group": spec.group} for spec in specs]
    write_jsonl(HERE / "images.jsonl", images)
    rows = question_rows(specs)
    write_jsonl(HERE / "questions.jsonl", rows)
    answers = answer_rows(specs)
    write_jsonl(HERE / "answers.jsonl", answers)
    grouped = sum(spec.group is not None for spec in specs)
    print(f"{len(specs)} images ({grouped} in near-duplicate families): {count(images, 'kind')}")
    print(f"{len(rows)} questions: {count(rows, 'category')}")
    print(f"{len(answers)} answer questions: {count(answers, 'category')}")


if __name__ == "__main__":
    main()
