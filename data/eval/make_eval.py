"""Generate the evaluation sets: classroom charts and diagrams in images/, questions.jsonl and answers.jsonl."""

from __future__ import annotations

import json
import random
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import (
    Arc,
    Circle,
    Ellipse,
    FancyArrowPatch,
    FancyBboxPatch,
    Patch,
    Polygon,
    Rectangle,
)
from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGE_DIR = HERE / "images"
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 6.0, 100  # 800 x 600 pixels
CANVAS_W, CANVAS_H = 100.0, 66.0  # data units of the drawing area used by diagrams (8 px per unit)
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
Point = tuple[float, float]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

matplotlib.rcParams.update({"font.family": "DejaVu Sans", "axes.unicode_minus": False})


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


# ---------------------------------------------------------------- near-duplicate groups (data + templates)

RAINFALL_MM = {  # approximate monthly climate normals, rounded, for illustration only
    "Lisbon": [100, 89, 58, 65, 52, 15, 4, 6, 33, 100, 128, 127],
    "Oslo": [49, 36, 47, 41, 53, 65, 81, 89, 90, 84, 73, 55],
    "London": [55, 41, 42, 44, 49, 45, 45, 50, 49, 69, 59, 55],
    "Mumbai": [1, 0, 0, 1, 11, 580, 840, 585, 340, 90, 15, 4],
    "Cairo": [5, 4, 4, 1, 0, 0, 0, 0, 0, 1, 3, 6],
    "Singapore": [242, 162, 185, 179, 172, 162, 158, 176, 169, 194, 256, 288],
    "Sydney": [92, 130, 131, 127, 119, 132, 70, 76, 64, 77, 84, 77],
    "Buenos Aires": [121, 118, 140, 115, 89, 59, 68, 69, 77, 125, 118, 107],
    "Reykjavik": [76, 72, 82, 58, 44, 50, 52, 62, 67, 86, 73, 79],
    "Nairobi": [58, 53, 92, 211, 134, 34, 18, 24, 28, 58, 164, 103],
}
RAINFALL_PARAPHRASES = [
    "How wet does {city} get in autumn?",
    "Is {city} dry in the summer months?",
    "When is the wettest time of year in {city}?",
    "How many millimetres of water fall on {city} in a typical {month}?",
    "Does it pour much in {city} during winter?",
]
RAINFALL_EXTRA = [
    ("number", "Which city gets 840 mm of rain in July?", ["Mumbai"]),
    ("number", "Which city has 288 mm of rain in December?", ["Singapore"]),
    ("entity", "Which gets more rain in January, Oslo or London?", ["Oslo", "London"]),
    ("entity", "Compare the rainy seasons of Nairobi and Singapore.", ["Nairobi", "Singapore"]),
]

POPULATION_YEARS = ["1960", "1970", "1980", "1990", "2000", "2010", "2020"]
POPULATION_MILLIONS = {  # approximate, rounded
    "Japan": [93.2, 104.3, 116.8, 123.5, 126.8, 128.1, 126.3],
    "Brazil": [72.2, 95.3, 121.0, 149.0, 174.8, 195.7, 213.2],
    "Nigeria": [45.1, 55.6, 72.8, 95.2, 122.9, 160.9, 208.3],
    "Germany": [72.8, 78.2, 78.3, 79.4, 82.2, 81.8, 83.2],
    "Mexico": [37.8, 51.5, 68.3, 83.9, 98.9, 114.1, 126.0],
    "Canada": [17.9, 21.3, 24.5, 27.7, 30.7, 34.0, 38.0],
    "Egypt": [26.6, 34.8, 43.7, 57.2, 71.4, 87.3, 107.5],
    "Italy": [50.2, 53.8, 56.4, 56.7, 56.9, 59.3, 59.4],
}
POPULATION_PARAPHRASES = [
    "How many people lived in {country} in 1980?",
    "Has {country} grown much since the 1960s?",
    "How many inhabitants did {country} have around the year 2000?",
    "Is the number of residents in {country} going up or down?",
]
POPULATION_EXTRA = [
    ("number", "Which country had 45.1 million inhabitants in 1960?", ["Nigeria"]),
    ("number", "Which country had 17.9 million people in 1960?", ["Canada"]),
    ("entity", "Did Italy or Germany gain more people between 1960 and 2020?", ["Italy", "Germany"]),
]

TEMPERATURE_C = {  # approximate monthly mean temperatures, rounded
    "Moscow": [-6.5, -6.7, -1.0, 6.7, 13.2, 17.0, 19.2, 17.0, 11.3, 5.6, -1.2, -5.2],
    "Dubai": [19, 20, 23, 27, 31, 33, 35, 35, 33, 29, 25, 21],
    "Tokyo": [5.4, 6.1, 9.4, 14.3, 18.8, 21.9, 25.7, 26.9, 23.3, 18.0, 12.5, 7.7],
    "Cape Town": [21, 21, 20, 18, 15, 13, 12, 13, 14, 16, 18, 20],
}
TEMPERATURE_PARAPHRASES = [
    "How cold does {city} get in January?",
    "How hot is {city} in August?",
    "Would I need a coat in {city} in December?",
    "Is {city} warm or chilly in the middle of the year?",
]
TEMPERATURE_EXTRA = [
    ("number", "Which city averages 35 °C in July?", ["Dubai"]),
    ("entity", "Is Tokyo or Moscow colder in February?", ["Tokyo", "Moscow"]),
]

FAIR_YEARS = ["2019", "2020", "2021", "2022", "2023", "2024"]
FAIR_STUDENTS = [
    "Amara Okafor",
    "Liam Chen",
    "Sofia Rossi",
    "Noah Patel",
    "Mia Johansson",
    "Ethan Brown",
    "Zara Ahmed",
    "Lucas Silva",
    "Chloe Martin",
    "Omar Haddad",
    "Hana Sato",
    "Jack Wilson",
    "Priya Sharma",
    "Mateo Garcia",
    "Ella Novak",
    "Kwame Mensah",
    "Lily Evans",
    "Yusuf Demir",
    "Ava Kowalski",
    "Leo Dubois",
    "Isla Murphy",
    "Ravi Kumar",
    "Nora Berg",
    "Samuel Adeyemi",
    "Grace Kim",
    "Tomas Horvat",
    "Aisha Bello",
    "Finn Larsen",
    "Maya Cohen",
    "Diego Torres",
]
FAIR_PROJECTS = [
    "Solar oven",
    "Volcano model",
    "Plant growth and music",
    "Water filter",
    "Magnet strength",
    "Paper bridges",
    "Bread mould",
    "Wind turbine",
    "Egg drop",
    "Crystal growing",
    "Lemon battery",
    "Acid rain",
    "Pendulum timing",
    "Bird feeders",
    "Soil erosion",
    "Sound in water",
]
FAIR_PARAPHRASES = [
    "Who got the top prize for their experiment in {year}?",
    "Which pupils were placed in the {year} school project competition?",
    "Who came second at the {year} school experiment show?",
]

TRAVEL_CLASSES = ["6A", "6B", "6C", "7A", "7B", "7C"]
TRAVEL_MODES = ["Walk", "Car", "Bus", "Bicycle", "Scooter"]
TRAVEL_PARAPHRASES = [
    "Do many children in {cls} come by bike?",
    "What share of {cls} pupils arrive by car?",
    "How do the kids of {cls} get here in the morning?",
]

TIMETABLE_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
TIMETABLE_SLOTS = [
    ("1", "09:00 to 09:50"),
    ("2", "09:50 to 10:40"),
    ("Break", "10:40 to 11:00"),
    ("3", "11:00 to 11:50"),
    ("4", "11:50 to 12:40"),
    ("Lunch", "12:40 to 13:30"),
    ("5", "13:30 to 14:20"),
    ("6", "14:20 to 15:10"),
]
TIMETABLE_SPECIAL = {"Monday": "Music", "Tuesday": "PE", "Wednesday": "Art", "Thursday": "Drama", "Friday": "Computing"}
TIMETABLE_HUMANITY = {
    "Monday": "History",
    "Tuesday": "Geography",
    "Wednesday": "French",
    "Thursday": "History",
    "Friday": "Geography",
}
TIMETABLE_PARAPHRASES = [
    "What lessons do we have on {day}?",
    "What comes after lunch on {day}?",
    "Which subject is first thing on {day} morning?",
]


def percentages(weights: list[int]) -> list[int]:
    """Integer percentages proportional to weights that add up to exactly 100."""
    total = sum(weights)
    values = [round(weight * 100 / total) for weight in weights]
    values[values.index(max(values))] += 100 - sum(values)
    return values


def rainfall_group() -> list[Spec]:
    """One monthly rainfall bar chart per city."""
    specs = []
    for index, (city, values) in enumerate(RAINFALL_MM.items()):
        wettest = values.index(max(values))
        questions = [
            (
                "paraphrase",
                RAINFALL_PARAPHRASES[index % len(RAINFALL_PARAPHRASES)].format(
                    city=city, month=MONTH_NAMES[(index * 5) % 12]
                ),
            ),
            ("number", f"How much rain does {city} get in {MONTH_NAMES[wettest]}?"),
        ]
        if index % 2 == 0:
            questions.append(("literal", f"Monthly rainfall in {city}"))
        body = {"labels": MONTHS, "values": values, "axis": "Rainfall (mm)"}
        title = f"Monthly rainfall in {city}"
        specs.append(Spec(f"rainfall:{city}", "bar", title, body, questions, "rainfall"))
    return specs


def population_group() -> list[Spec]:
    """One population line chart per country."""
    specs = []
    for index, (country, values) in enumerate(POPULATION_MILLIONS.items()):
        questions = [
            ("paraphrase", POPULATION_PARAPHRASES[index % len(POPULATION_PARAPHRASES)].format(country=country))
        ]
        if index % 4 == 0:
            questions.append(("literal", f"Population of {country} from 1960 to 2020"))
        body = {"labels": POPULATION_YEARS, "values": values, "axis": "Millions", "xlabel": "Year"}
        title = f"Population of {country}, 1960-2020"
        specs.append(Spec(f"population:{country}", "line", title, body, questions, "population"))
    return specs


def temperature_group() -> list[Spec]:
    """One monthly temperature line chart per city."""
    specs = []
    for index, (city, values) in enumerate(TEMPERATURE_C.items()):
        questions = [("paraphrase", TEMPERATURE_PARAPHRASES[index % len(TEMPERATURE_PARAPHRASES)].format(city=city))]
        if index == 0:
            questions.append(("literal", f"Average monthly temperature in {city}"))
        body = {"labels": MONTHS, "values": values, "axis": "Temperature (°C)"}
        title = f"Average monthly temperature in {city}"
        specs.append(Spec(f"temperature:{city}", "line", title, body, questions, "temperature"))
    return specs


def science_fair_group() -> list[Spec]:
    """One results table per year, with invented students and seeded scores."""
    specs = []
    for index, year in enumerate(FAIR_YEARS):
        rng = random.Random(f"science-fair-{year}")
        students = FAIR_STUDENTS[index * 5 : index * 5 + 5]
        projects = rng.sample(FAIR_PROJECTS, 5)
        scores = sorted(rng.sample(range(70, 99), 5), reverse=True)
        places = ["1st", "2nd", "3rd", "4th", "5th"]
        rows = [
            [place, student, project, str(score)]
            for place, student, project, score in zip(places, students, projects, scores, strict=True)
        ]
        questions = [("paraphrase", FAIR_PARAPHRASES[index % len(FAIR_PARAPHRASES)].format(year=year))]
        if index % 2 == 1:
            questions.append(("entity", f"In which year did {students[0]} win first place?"))
        if index == 0:
            questions.append(("literal", f"Science fair winners {year}"))
        body = {"columns": ["Place", "Student", "Project", "Score"], "rows": rows}
        specs.append(Spec(f"fair:{year}", "table", f"Science fair winners {year}", body, questions, "fair"))
    return specs


def travel_group() -> list[Spec]:
    """One pie chart per class of how pupils get to school, with seeded shares."""
    shares = {}
    for cls in TRAVEL_CLASSES:
        rng = random.Random(f"travel-{cls}")
        shares[cls] = percentages([rng.randint(4, 40) for _ in TRAVEL_MODES])
    walk_counts = [shares[cls][0] for cls in TRAVEL_CLASSES]
    unique_walkers = [cls for cls in TRAVEL_CLASSES if walk_counts.count(shares[cls][0]) == 1]
    specs = []
    for index, cls in enumerate(TRAVEL_CLASSES):
        questions = [("paraphrase", TRAVEL_PARAPHRASES[index % len(TRAVEL_PARAPHRASES)].format(cls=cls))]
        if cls in unique_walkers[:2]:
            questions.append(("number", f"In which class do {shares[cls][0]}% of the pupils walk to school?"))
        if index == 0:
            questions.append(("literal", f"How Class {cls} travels to school"))
        body = {"labels": TRAVEL_MODES, "values": shares[cls]}
        title = f"How Class {cls} travels to school"
        specs.append(Spec(f"travel:{cls}", "pie", title, body, questions, "travel"))
    return specs


def timetable_group() -> list[Spec]:
    """One timetable per weekday; each day has a subject that no other day has."""
    specs = []
    for index, day in enumerate(TIMETABLE_DAYS):
        lessons = ["Maths", "English", "Science", TIMETABLE_SPECIAL[day], TIMETABLE_HUMANITY[day], "Reading"]
        lessons = lessons[index:] + lessons[:index]
        rows = []
        for period, time in TIMETABLE_SLOTS:
            subject = period if period in ("Break", "Lunch") else lessons.pop(0)
            rows.append([period, time, subject])
        questions = [
            ("paraphrase", TIMETABLE_PARAPHRASES[index % len(TIMETABLE_PARAPHRASES)].format(day=day)),
            ("entity", f"On which day does Class 5B have {TIMETABLE_SPECIAL[day]}?"),
        ]
        body = {"columns": ["Period", "Time", "Subject"], "rows": rows}
        title = f"Class 5B timetable: {day}"
        specs.append(Spec(f"timetable:{day}", "table", title, body, questions, "timetable"))
    return specs


GROUP_EXTRAS = {"rainfall": RAINFALL_EXTRA, "population": POPULATION_EXTRA, "temperature": TEMPERATURE_EXTRA}

# ---------------------------------------------------------------- single images (data only)

SINGLES = [
    Spec(
        "mountains",
        "bar",
        "Heights of the world's highest mountains",
        {
            "labels": ["Mount Everest", "K2", "Kangchenjunga", "Lhotse", "Makalu"],
            "values": [8849, 8611, 8586, 8516, 8485],
            "axis": "Height (m)",
            "horizontal": True,
        },
        [("paraphrase", "Which peak is the tallest on the planet?"), ("number", "How tall is K2 in metres?")],
    ),
    Spec(
        "rivers",
        "bar",
        "Lengths of the longest rivers",
        {
            "labels": ["Nile", "Amazon", "Yangtze", "Mississippi-Missouri", "Yenisei"],
            "values": [6650, 6400, 6300, 6275, 5539],
            "axis": "Length (km)",
            "horizontal": True,
        },
        [
            ("paraphrase", "How many kilometres does the Yangtze flow from source to sea?"),
            ("number", "Which river is 6650 km long?"),
        ],
    ),
    Spec(
        "planets",
        "bar",
        "Diameters of the planets",
        {
            "labels": ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"],
            "values": [4879, 12104, 12756, 6792, 142984, 120536, 51118, 49528],
            "axis": "Diameter (km)",
        },
        [("paraphrase", "How wide is Jupiter compared with Earth?"), ("number", "What is the diameter of Mars in km?")],
    ),
    Spec(
        "animal_speed",
        "bar",
        "Top speeds of land animals",
        {
            "labels": ["Cheetah", "Pronghorn", "Lion", "Greyhound", "Horse", "Rabbit", "Human"],
            "values": [110, 88, 80, 72, 70, 56, 45],
            "axis": "Speed (km/h)",
            "horizontal": True,
        },
        [("paraphrase", "How fast can a cheetah run?"), ("number", "Which animal reaches 88 km/h?")],
    ),
    Spec(
        "bean_plant",
        "line",
        "Growth of a bean plant",
        {
            "labels": ["0", "4", "8", "12", "16", "20", "24", "28"],
            "values": [0, 1.5, 4, 7.5, 11, 15, 18, 20],
            "axis": "Height (cm)",
            "xlabel": "Day",
        },
        [
            ("paraphrase", "How tall did our seedling get after four weeks?"),
            ("literal", "bean plant growth over 28 days"),
        ],
    ),
    Spec(
        "cooling",
        "line",
        "Cooling of a cup of hot water",
        {
            "labels": ["0", "5", "10", "15", "20", "25", "30", "35", "40"],
            "values": [90, 72, 60, 51, 45, 40, 37, 34, 32],
            "axis": "Temperature (°C)",
            "xlabel": "Time (minutes)",
        },
        [
            ("paraphrase", "How quickly does a hot drink lose heat?"),
            ("concept", "Does a hot liquid cool down faster at the start or at the end?"),
        ],
    ),
    Spec(
        "cyclist",
        "line",
        "Distance-time graph of a cyclist",
        {
            "labels": ["0", "10", "20", "30", "40", "50", "60"],
            "values": [0, 4, 8, 8, 14, 20, 24],
            "axis": "Distance (km)",
            "xlabel": "Time (minutes)",
        },
        [
            ("paraphrase", "When did the bike rider stop for a rest?"),
            ("concept", "What does a flat part of a distance against time graph mean?"),
        ],
    ),
    Spec(
        "co2",
        "line",
        "Carbon dioxide in the air at Mauna Loa",
        {
            "labels": ["1960", "1970", "1980", "1990", "2000", "2010", "2020"],
            "values": [317, 326, 339, 354, 370, 390, 414],
            "axis": "CO2 (parts per million)",
            "xlabel": "Year",
        },
        [
            ("paraphrase", "How quickly is the amount of CO2 around us going up?"),
            ("number", "What was the carbon dioxide level in 1990 in ppm?"),
        ],
    ),
    Spec(
        "earth_water",
        "pie",
        "Where is Earth's water?",
        {
            "labels": ["Oceans (salt water)", "Ice caps and glaciers", "Groundwater", "Lakes, rivers and air"],
            "values": [97.2, 2.1, 0.6, 0.1],
        },
        [
            ("paraphrase", "How much of our planet's H2O is salty sea?"),
            ("number", "What percentage of the water is frozen in glaciers?"),
        ],
    ),
    Spec(
        "body_elements",
        "pie",
        "Elements in the human body by mass",
        {
            "labels": ["Oxygen", "Carbon", "Hydrogen", "Nitrogen", "Calcium", "Phosphorus", "Other"],
            "values": [65, 18, 10, 3, 1.5, 1, 1.5],
        },
        [
            ("paraphrase", "What are people made of, chemically?"),
            ("number", "What percentage of a person's weight is carbon?"),
        ],
    ),
    Spec(
        "continents",
        "pie",
        "Land area of the continents",
        {
            "labels": ["Asia", "Africa", "North America", "South America", "Antarctica", "Europe", "Australia"],
            "values": [30, 20, 16.5, 12, 9, 6.5, 6],
        },
        [("paraphrase", "Is Africa bigger than Europe?"), ("literal", "land area of each continent")],
    ),
    Spec(
        "atmosphere",
        "pie",
        "Composition of Earth's atmosphere",
        {
            "labels": ["Nitrogen", "Oxygen", "Argon", "Other gases"],
            "values": [78, 21, 0.9, 0.1],
        },
        [
            ("paraphrase", "Which gases make up the air we breathe?"),
            ("number", "How much argon is there in the air, in percent?"),
        ],
    ),
    Spec(
        "water_cycle",
        "flow",
        "The water cycle",
        {
            "layout": "cycle",
            "steps": [
                "Evaporation\nthe sun heats water into vapour",
                "Condensation\nvapour cools into clouds",
                "Precipitation\nrain, snow and hail fall",
                "Collection\nwater gathers in rivers and seas",
            ],
        },
        [
            ("paraphrase", "How does rain form and get back to the sea?"),
            ("concept", "What happens after condensation?"),
        ],
    ),
    Spec(
        "rock_cycle",
        "flow",
        "The rock cycle",
        {
            "layout": "cycle",
            "steps": [
                "Magma",
                "Igneous rock\n(magma cools)",
                "Sediment\n(weathering and erosion)",
                "Sedimentary rock\n(compaction)",
                "Metamorphic rock\n(heat and pressure)",
            ],
        },
        [
            ("paraphrase", "How do stones change from one type into another over time?"),
            ("concept", "What turns rock into metamorphic rock?"),
        ],
    ),
    Spec(
        "photosynthesis",
        "flow",
        "Photosynthesis",
        {
            "layout": "chain",
            "steps": [
                "Light energy from the sun",
                "Water and carbon dioxide",
                "Chlorophyll in the leaf",
                "Glucose and oxygen",
            ],
        },
        [
            ("paraphrase", "How do green plants make their own food?"),
            ("concept", "Which gas do leaves give off when they make glucose?"),
        ],
    ),
    Spec(
        "butterfly",
        "flow",
        "Life cycle of a butterfly",
        {
            "layout": "cycle",
            "steps": [
                "Egg",
                "Caterpillar\nalso called larva",
                "Chrysalis\nalso called pupa",
                "Adult butterfly",
            ],
        },
        [("paraphrase", "What does a caterpillar turn into?"), ("concept", "What is the pupa stage called?")],
    ),
    Spec(
        "frog",
        "flow",
        "Life cycle of a frog",
        {
            "layout": "cycle",
            "steps": [
                "Frogspawn\n(eggs)",
                "Tadpole",
                "Tadpole with legs",
                "Froglet",
                "Adult frog",
            ],
        },
        [("paraphrase", "What do tadpoles grow into?"), ("literal", "frog life cycle stages")],
    ),
    Spec(
        "scientific_method",
        "flow",
        "The scientific method",
        {
            "layout": "chain",
            "steps": [
                "Ask a question",
                "Do background research",
                "Form a hypothesis",
                "Test with an experiment",
                "Analyse the data",
                "Draw a conclusion",
                "Share the results",
            ],
        },
        [
            ("paraphrase", "What steps should I follow to plan a fair test?"),
            ("concept", "What comes after forming a hypothesis?"),
        ],
    ),
    Spec(
        "ocean_food_chain",
        "flow",
        "An ocean food chain",
        {
            "layout": "chain",
            "steps": [
                "Phytoplankton",
                "Krill",
                "Small fish",
                "Seal",
                "Orca",
            ],
        },
        [
            ("paraphrase", "What eats krill in the sea?"),
            ("concept", "Which animal is the top predator in the marine food chain?"),
        ],
    ),
    Spec(
        "woodland_food_chain",
        "flow",
        "A woodland food chain",
        {
            "layout": "chain",
            "steps": [
                "Oak leaves",
                "Caterpillar",
                "Blue tit",
                "Sparrowhawk",
            ],
        },
        [
            ("paraphrase", "Which bird hunts blue tits in the forest?"),
            ("concept", "What do caterpillars eat in the woods?"),
        ],
    ),
    Spec(
        "digestion",
        "flow",
        "The digestive system",
        {
            "layout": "chain",
            "steps": [
                "Mouth\nteeth chew food",
                "Oesophagus\ncarries food down",
                "Stomach\nmixes food with acid",
                "Small intestine\nnutrients are absorbed",
                "Large intestine\nwater is absorbed",
                "Rectum",
            ],
        },
        [
            ("paraphrase", "Where does my food go after I swallow it?"),
            ("concept", "Where are nutrients absorbed into the body?"),
        ],
    ),
    Spec(
        "volcano",
        "labelled",
        "Structure of a volcano",
        {
            "shapes": [
                ("rect", 0, 0, 100, 18, "#d7ccc8"),
                ("poly", [(15, 18), (42, 50), (58, 50), (85, 18)], "#8d6e63"),
                ("poly", [(42, 50), (46, 47), (54, 47), (58, 50)], "#5d4037"),
                ("ellipse", 50, 8, 30, 10, "#e65100"),
                ("rect", 48, 8, 4, 40, "#ff7043"),
                ("poly", [(51, 24), (66, 32), (65, 34), (51, 27)], "#ff7043"),
                ("poly", [(58, 50), (61, 50), (71, 37), (67, 36)], "#ff9800"),
                ("circle", 45, 58, 4, "#9e9e9e"),
                ("circle", 51, 60, 5, "#9e9e9e"),
                ("circle", 57, 58, 4, "#9e9e9e"),
            ],
            "labels": [
                ("Ash cloud", (57, 61), (68, 62)),
                ("Crater", (50, 48), (32, 57)),
                ("Main vent", (50, 38), (28, 44)),
                ("Layers of ash\nand lava", (33, 30), (19, 34)),
                ("Lava flow", (68, 40), (80, 46)),
                ("Side vent", (64, 32), (82, 32)),
                ("Magma chamber", (58, 8), (70, 10)),
            ],
        },
        [
            ("paraphrase", "Where does the molten rock come out of a mountain that erupts?"),
            ("concept", "Where is magma stored under a volcano?"),
        ],
    ),
    Spec(
        "animal_cell",
        "labelled",
        "Parts of an animal cell",
        {
            "shapes": [
                ("ellipse", 50, 33, 50, 42, "#ffe0b2"),
                ("circle", 46, 36, 8, "#b39ddb"),
                ("circle", 46, 36, 3, "#5e35b1"),
                ("ellipse", 63, 42, 9, 4.5, "#ef6c00"),
                ("ellipse", 38, 20, 9, 4.5, "#ef6c00"),
                ("circle", 58, 24, 0.8, "#37474f"),
                ("circle", 61, 22, 0.8, "#37474f"),
                ("circle", 55, 20, 0.8, "#37474f"),
                ("circle", 34, 42, 0.8, "#37474f"),
                ("circle", 32, 38, 0.8, "#37474f"),
            ],
            "labels": [
                ("Nucleus", (44, 40), (20, 56)),
                ("Cell membrane", (60, 53), (74, 60)),
                ("Cytoplasm", (66, 30), (78, 30)),
                ("Mitochondrion", (65, 43), (78, 45)),
                ("Ribosomes", (58, 23), (78, 14)),
                ("Nucleolus", (46, 36), (20, 36)),
                ("Mitochondrion", (36, 20), (20, 14)),
            ],
        },
        [
            ("paraphrase", "What are the organelles inside a human body cell?"),
            ("concept", "Which part of a cell holds its genetic material, the nucleus or the membrane?"),
        ],
    ),
    Spec(
        "atmosphere_layers",
        "labelled",
        "Layers of the atmosphere",
        {
            "shapes": [
                ("rect", 5, 2, 55, 12, "#bbdefb"),
                ("rect", 5, 14, 55, 12, "#90caf9"),
                ("rect", 5, 26, 55, 12, "#64b5f6"),
                ("rect", 5, 38, 55, 12, "#3f7fbf"),
                ("rect", 5, 50, 55, 12, "#1a3f6f"),
            ],
            "labels": [
                ("Troposphere (0-12 km)", None, (32, 8)),
                ("Stratosphere (12-50 km)", None, (32, 20)),
                ("Mesosphere (50-80 km)", None, (32, 32)),
                ("Thermosphere (80-700 km)", None, (32, 44)),
                ("Exosphere (above 700 km)", None, (32, 56)),
                ("Clouds and weather", (58, 8), (66, 8)),
                ("Ozone layer", (58, 20), (66, 20)),
                ("Meteors burn up", (58, 32), (66, 32)),
                ("Auroras", (58, 44), (66, 44)),
                ("Satellites", (58, 56), (66, 56)),
            ],
        },
        [
            ("paraphrase", "How high up is the ozone layer and where does weather happen?"),
            ("concept", "In which layer of the sky do shooting stars burn up?"),
        ],
    ),
    Spec(
        "solar_system",
        "labelled",
        "The Solar System",
        {
            "shapes": [
                ("circle", 0, 33, 14, "#fdd835"),
                ("circle", 20, 33, 1.2, "#9e9e9e"),
                ("circle", 28, 33, 2, "#ffcc80"),
                ("circle", 36, 33, 2.1, "#42a5f5"),
                ("circle", 44, 33, 1.6, "#e57373"),
                ("circle", 55, 33, 5, "#d7a86e"),
                ("ellipse", 69, 33, 14, 3, "#bcaaa4"),
                ("circle", 69, 33, 4.3, "#f0d9a0"),
                ("circle", 82, 33, 3, "#80deea"),
                ("circle", 93, 33, 3, "#5c6bc0"),
            ],
            "labels": [
                ("Sun", None, (5, 33)),
                ("Mercury", (20, 34.2), (20, 48)),
                ("Venus", (28, 31), (28, 18)),
                ("Earth", (36, 35.1), (36, 48)),
                ("Mars", (44, 31.4), (44, 18)),
                ("Jupiter", (55, 38), (55, 48)),
                ("Saturn", (69, 28.7), (69, 18)),
                ("Uranus", (82, 36), (82, 48)),
                ("Neptune", (93, 30), (92, 18)),
            ],
        },
        [
            ("paraphrase", "In what order do the planets go out from the Sun?"),
            ("concept", "Which planet is closest to the Sun?"),
        ],
    ),
    Spec(
        "eye",
        "labelled",
        "Parts of the human eye",
        {
            "shapes": [
                ("circle", 50, 33, 22, "#fafafa"),
                ("arc", 50, 33, 44, 44, -65, 65, "#e53935"),
                ("rect", 71, 30, 22, 6, "#fff176"),
                ("ellipse", 28.5, 33, 7, 22, "#e1f5fe"),
                ("rect", 30, 37, 2.5, 8, "#6d4c41"),
                ("rect", 30, 21, 2.5, 8, "#6d4c41"),
                ("ellipse", 35, 33, 6, 14, "#b3e5fc"),
            ],
            "labels": [
                ("Cornea", (26, 38), (16, 46)),
                ("Iris", (31, 43), (18, 58)),
                ("Pupil", (30, 33), (16, 33)),
                ("Lens", (35, 27), (18, 14)),
                ("Retina", (67, 46), (78, 54)),
                ("Optic nerve", (86, 30), (86, 20)),
                ("Vitreous humour", None, (52, 33)),
                ("Sclera", (58, 12.5), (70, 6)),
            ],
        },
        [
            ("paraphrase", "Which bits of our eyes let us see, and what do they do?"),
            ("concept", "Which nerve carries signals from the eye to the brain?"),
        ],
    ),
    Spec(
        "earth_layers",
        "labelled",
        "Layers of the Earth",
        {
            "shapes": [
                ("circle", 30, 33, 29, "#8d6e63"),
                ("circle", 30, 33, 27, "#ef6c00"),
                ("circle", 30, 33, 15, "#ffa726"),
                ("circle", 30, 33, 7, "#ffee58"),
            ],
            "labels": [
                ("Crust: 5-70 km thick", (52, 52), (62, 58)),
                ("Mantle: hot, slowly moving rock", (50, 40), (62, 44)),
                ("Outer core: liquid iron\nand nickel", (42, 30), (62, 28)),
                ("Inner core: solid iron,\nabout 5400 °C", (33, 33), (62, 12)),
            ],
        },
        [
            ("paraphrase", "What is inside our planet under the ground?"),
            ("concept", "Which part of the planet is made of liquid iron?"),
        ],
    ),
    Spec(
        "flight",
        "timeline",
        "History of flight",
        {
            "events": [
                ("1783", "First hot-air balloon flight"),
                ("1903", "Wright brothers' first powered flight"),
                ("1927", "Lindbergh flies alone across the Atlantic"),
                ("1947", "First supersonic flight"),
                ("1969", "Concorde's first flight"),
                ("1970", "Boeing 747 enters service"),
            ]
        },
        [
            ("paraphrase", "When did people first manage to fly aeroplanes and balloons?"),
            ("number", "In what year did the Wright brothers make their first powered flight?"),
        ],
    ),
    Spec(
        "inventions",
        "timeline",
        "Great inventions",
        {
            "events": [
                ("1440", "Printing press"),
                ("1769", "Watt's steam engine"),
                ("1876", "Telephone"),
                ("1879", "Light bulb"),
                ("1928", "Penicillin"),
                ("1947", "Transistor"),
                ("1989", "World Wide Web"),
            ]
        },
        [("paraphrase", "When was the telephone created?"), ("number", "Which discovery was made in 1928?")],
    ),
    Spec(
        "computers",
        "timeline",
        "A short history of computers",
        {
            "events": [
                ("1946", "ENIAC, an early electronic computer"),
                ("1971", "First microprocessor"),
                ("1981", "IBM personal computer"),
                ("1991", "First website goes online"),
                ("2007", "First iPhone"),
            ]
        },
        [
            ("paraphrase", "When did the first website appear on the internet?"),
            ("literal", "short history of computers"),
        ],
    ),
    Spec(
        "rome",
        "timeline",
        "Ancient Rome",
        {
            "events": [
                ("753 BC", "Founding of Rome (legend)"),
                ("509 BC", "Roman Republic begins"),
                ("44 BC", "Julius Caesar is killed"),
                ("27 BC", "Augustus becomes first emperor"),
                ("AD 79", "Vesuvius buries Pompeii"),
                ("AD 476", "Fall of the Western Roman Empire"),
            ]
        },
        [("paraphrase", "When was Julius Caesar murdered?"), ("number", "What happened to Pompeii in AD 79?")],
    ),
    Spec(
        "space",
        "timeline",
        "Space exploration milestones",
        {
            "events": [
                ("1957", "Sputnik 1, first satellite"),
                ("1961", "Yuri Gagarin, first human in space"),
                ("1969", "Apollo 11 lands on the Moon"),
                ("1990", "Hubble Space Telescope"),
                ("1998", "First part of the ISS"),
                ("2012", "Curiosity rover lands on Mars"),
                ("2021", "James Webb Space Telescope"),
            ]
        },
        [
            ("paraphrase", "When did astronauts first walk on the Moon?"),
            ("number", "Which rover landed on Mars in 2012?"),
        ],
    ),
    Spec(
        "densities",
        "table",
        "Densities of common materials",
        {
            "columns": ["Material", "Density (g/cm³)", "Floats in water?"],
            "rows": [
                ["Cork", "0.24", "Yes"],
                ["Oak wood", "0.75", "Yes"],
                ["Ice", "0.92", "Yes"],
                ["Water", "1.00", "-"],
                ["Aluminium", "2.70", "No"],
                ["Iron", "7.87", "No"],
                ["Gold", "19.3", "No"],
            ],
        },
        [("paraphrase", "Why does ice float but iron sinks?"), ("number", "What is the density of gold?")],
    ),
    Spec(
        "elements",
        "table",
        "The first ten elements",
        {
            "columns": ["No.", "Symbol", "Name", "Atomic mass"],
            "rows": [
                ["1", "H", "Hydrogen", "1.008"],
                ["2", "He", "Helium", "4.003"],
                ["3", "Li", "Lithium", "6.94"],
                ["4", "Be", "Beryllium", "9.012"],
                ["5", "B", "Boron", "10.81"],
                ["6", "C", "Carbon", "12.011"],
                ["7", "N", "Nitrogen", "14.007"],
                ["8", "O", "Oxygen", "15.999"],
                ["9", "F", "Fluorine", "18.998"],
                ["10", "Ne", "Neon", "20.180"],
            ],
        },
        [
            ("paraphrase", "What is the chemical symbol for helium and how heavy is its atom?"),
            ("number", "Which element has atomic number 5?"),
        ],
    ),
    Spec(
        "times_table",
        "table",
        "Multiplication table",
        {
            "columns": ["x"] + [str(n) for n in range(1, 11)],
            "rows": [[str(a)] + [str(a * b) for b in range(1, 11)] for a in range(1, 11)],
        },
        [("paraphrase", "I need a grid to practise my times tables"), ("number", "What is 7 times 8?")],
    ),
    Spec(
        "sound_speed",
        "table",
        "Speed of sound in different materials",
        {
            "columns": ["Material", "Speed (m/s)"],
            "rows": [
                ["Air (20 °C)", "343"],
                ["Water", "1480"],
                ["Oak wood", "3850"],
                ["Glass", "4540"],
                ["Steel", "5960"],
            ],
        },
        [
            ("paraphrase", "Does noise travel faster through water or through air?"),
            ("number", "How many metres per second does sound travel in steel?"),
        ],
    ),
    Spec(
        "metric_prefixes",
        "table",
        "Metric prefixes",
        {
            "columns": ["Prefix", "Symbol", "Multiply by"],
            "rows": [
                ["kilo", "k", "1000"],
                ["hecto", "h", "100"],
                ["deca", "da", "10"],
                ["deci", "d", "0.1"],
                ["centi", "c", "0.01"],
                ["milli", "m", "0.001"],
            ],
        },
        [
            ("paraphrase", "How many metres are there in a kilometre?"),
            ("concept", "What does the start of the word millimetre mean?"),
        ],
    ),
    Spec(
        "melting_points",
        "table",
        "Melting points of metals",
        {
            "columns": ["Metal", "Melting point (°C)"],
            "rows": [
                ["Tin", "232"],
                ["Lead", "327"],
                ["Aluminium", "660"],
                ["Silver", "962"],
                ["Gold", "1064"],
                ["Copper", "1085"],
                ["Iron", "1538"],
            ],
        },
        [("paraphrase", "At what temperature does copper turn liquid?"), ("number", "Which metal melts at 232 °C?")],
    ),
]

# ---------------------------------------------------------------- answers.jsonl: expected values, off-topic questions

SINGLE_ANSWERS = [  # (spec key, question, expected label or number, exactly as the image prints it)
    ("mountains", "How high is Lhotse, in metres?", 8516),
    ("rivers", "How long is the Amazon river, in km?", 6400),
    ("planets", "What is the diameter of Jupiter, in km?", 142984),
    ("animal_speed", "How fast can a lion run, in km/h?", 80),
    ("bean_plant", "How tall was the bean plant on day 12, in cm?", 7.5),
    ("cooling", "What was the temperature of the cooling cup of water after 10 minutes?", 60),
    ("co2", "How much carbon dioxide was in the air at Mauna Loa in 2020, in ppm?", 414),
    ("earth_water", "What percentage of Earth's water is in the oceans?", 97.2),
    ("body_elements", "What percentage of the human body's mass is oxygen?", 65),
    ("atmosphere", "What percentage of Earth's atmosphere is nitrogen?", 78),
    ("water_cycle", "In the water cycle, which stage comes after evaporation?", "Condensation"),
    ("rock_cycle", "What kind of rock forms when magma cools?", "Igneous rock"),
    ("butterfly", "Which stage of a butterfly's life comes straight after the egg?", "Caterpillar"),
    ("ocean_food_chain", "Which animal eats seals in the ocean food chain?", "Orca"),
    ("digestion", "In which organ of the digestive system is water absorbed?", "Large intestine"),
    ("volcano", "What is the pool of molten rock under a volcano called?", "Magma chamber"),
    ("eye", "Which part of the eye carries signals to the brain?", "Optic nerve"),
    ("atmosphere_layers", "In which layer of the atmosphere is the ozone layer?", "Stratosphere"),
    ("earth_layers", "About how hot is the Earth's inner core, in °C?", 5400),
    ("flight", "In what year was the first supersonic flight?", 1947),
    ("inventions", "In what year was the light bulb invented?", 1879),
    ("space", "What was the name of the first satellite?", "Sputnik 1"),
    ("rome", "Who became the first Roman emperor in 27 BC?", "Augustus"),
    ("densities", "What is the density of ice, in g/cm³?", 0.92),
    ("elements", "Which element has the symbol Ne?", "Neon"),
    ("sound_speed", "How fast does sound travel through water, in m/s?", 1480),
]
OFF_TOPIC = [  # nothing in the collection is about these: the answer should be "not in the knowledge base"
    "What is the capital of Australia?",
    "How do I bake sourdough bread?",
    "Who wrote Romeo and Juliet?",
    "How do I reset my email password?",
    "What is a good recipe for lasagna?",
    "How do I restart a Kubernetes pod?",
    "Who painted the Mona Lisa?",
    "When is castling allowed in chess?",
    "How much does a Tesla cost?",
    "Which football club won the Champions League?",
    "How do I knit a scarf?",
    "What happens at the end of Hamlet?",
    "What is the share price of Apple?",
    "How do I tune a guitar?",
    "Which vaccines does a puppy need?",
]
NEAR_MISS = [  # on the collection's topics, but the fact asked for is in no image
    "How much rain falls in Paris in May?",
    "What was the population of France in 1990?",
    "Who won the science fair in 2018?",
    "What is the melting point of platinum?",
    "How fast can an elephant run?",
]

# ---------------------------------------------------------------- rendering


def fmt(value: float) -> str:
    """A number as printed on a chart: no trailing .0."""
    return f"{value:g}"


def staggered(labels: list[str]) -> list[str]:
    """Drop every second axis label one line lower, so OCR does not read a crowded axis as one long line."""
    if len(labels) < 8:
        return labels
    return [label if index % 2 == 0 else "\n" + label for index, label in enumerate(labels)]


def style_axes(ax: Axes) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=14)


def draw_bar(fig: Figure, body: dict[str, Any]) -> None:
    labels, values = body["labels"], body["values"]
    top = max(values)
    if body.get("horizontal"):
        ax = fig.add_axes((0.3, 0.12, 0.62, 0.74))
        positions = list(range(len(values)))[::-1]
        ax.barh(positions, values, color=PALETTE[0])
        ax.set_yticks(positions, labels)
        for position, value in zip(positions, values, strict=True):
            ax.text(value, position, f" {fmt(value)}", va="center", fontsize=13)
        ax.set_xlim(0, top * 1.2)
        ax.set_xlabel(body["axis"], fontsize=14)
    else:
        ax = fig.add_axes((0.14, 0.1, 0.82, 0.76))
        positions = list(range(len(values)))
        ax.bar(positions, values, color=PALETTE[0])
        ax.set_xticks(positions, staggered(labels))
        for position, value in zip(positions, values, strict=True):
            ax.text(position, value + top * 0.01, fmt(value), ha="center", va="bottom", fontsize=12)
        ax.set_ylim(0, top * 1.12)
        ax.set_ylabel(body["axis"], fontsize=14)
    style_axes(ax)


def draw_line(fig: Figure, body: dict[str, Any]) -> None:
    labels, values = body["labels"], body["values"]
    ax = fig.add_axes((0.12, 0.12, 0.84, 0.74))
    positions = list(range(len(values)))
    ax.plot(positions, values, marker="o", color=PALETTE[3], linewidth=2.5)
    span = max(values) - min(values)
    for position, value in zip(positions, values, strict=True):
        ax.text(
            position,
            value + span * 0.04,
            fmt(value),
            ha="center",
            va="bottom",
            fontsize=12,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
        )
    ax.set_xticks(positions, staggered(labels))
    ax.set_ylim(min(values) - span * 0.1, max(values) + span * 0.18)
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_ylabel(body["axis"], fontsize=14)
    if "xlabel" in body:
        ax.set_xlabel(body["xlabel"], fontsize=14)
    ax.grid(axis="y", alpha=0.3)
    style_axes(ax)


def draw_pie(fig: Figure, body: dict[str, Any]) -> None:
    labels, values = body["labels"], body["values"]
    ax = fig.add_axes((0.02, 0.04, 0.5, 0.8))
    wedges, _ = ax.pie(
        values,
        colors=PALETTE[: len(values)],
        startangle=90,
        counterclock=False,
        wedgeprops={"edgecolor": "white", "linewidth": 1.5},
    )
    legend = [f"{label}: {fmt(value)}%" for label, value in zip(labels, values, strict=True)]
    ax.legend(wedges, legend, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=15, frameon=False)


def canvas_axes(fig: Figure) -> Axes:
    """Axes for free drawing in CANVAS_W x CANVAS_H data units below the title."""
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.88))
    ax.set_xlim(0, CANVAS_W)
    ax.set_ylim(0, CANVAS_H)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def wrap(text: str, width: int) -> str:
    """Wrap each line of `text` to `width` characters, keeping the line breaks already there."""
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def box_edge(center: Point, half: Point, toward: Point) -> np.ndarray:
    """Point where the ray from a box's center toward `toward` leaves the box (plus a small gap)."""
    start, direction = np.array(center), np.array(toward) - np.array(center)
    scale = min(
        half[0] / abs(direction[0]) if direction[0] else np.inf, half[1] / abs(direction[1]) if direction[1] else np.inf
    )
    return start + direction * scale + direction / np.linalg.norm(direction) * 1.0


def chain_columns(count: int) -> int:
    """Boxes per row of a chain: 4 when that fills the rows evenly enough, else 3."""
    return 4 if count in (4, 7, 8) else 3


def flow_positions(count: int, layout: str) -> list[Point]:
    """Box centers: around an ellipse for a cycle, or left-right-left rows (a snake) for a chain."""
    if layout == "cycle":
        angles = [np.pi / 2 - 2 * np.pi * index / count for index in range(count)]
        return [(50 + 33 * np.cos(angle), 32 + 22 * np.sin(angle)) for angle in angles]
    per_row = chain_columns(count)
    rows = -(-count // per_row)
    positions = []
    for index in range(count):
        row, column = divmod(index, per_row)
        if row % 2 == 1:
            column = per_row - 1 - column
        y = 33 if rows == 1 else 56 - row * (46 / (rows - 1))
        positions.append(((column + 0.5) * CANVAS_W / per_row, y))
    return positions


def draw_flow(fig: Figure, body: dict[str, Any]) -> None:
    ax = canvas_axes(fig)
    count = len(body["steps"])
    positions = flow_positions(count, body["layout"])
    width = 13 if body["layout"] == "chain" and chain_columns(count) == 4 else 16
    steps = [wrap(step, width) for step in body["steps"]]
    longest = max(len(line) for step in steps for line in step.split("\n"))
    lines = max(step.count("\n") + 1 for step in steps)
    half = (longest * 0.62 + 1.5, lines * 1.7 + 1.5)
    for index, (step, (x, y)) in enumerate(zip(steps, positions, strict=True)):
        ax.add_patch(
            FancyBboxPatch(
                (x - half[0], y - half[1]),
                2 * half[0],
                2 * half[1],
                boxstyle="round,pad=0,rounding_size=1.5",
                facecolor=PALETTE[index % len(PALETTE)],
                alpha=0.35,
                edgecolor="#333333",
            )
        )
        ax.text(x, y, step, ha="center", va="center", fontsize=13, linespacing=1.3)
    pairs = list(zip(positions, positions[1:], strict=False))
    if body["layout"] == "cycle":
        pairs.append((positions[-1], positions[0]))
    for start, end in pairs:
        tail, head = box_edge(start, half, end), box_edge(end, half, start)
        ax.add_patch(
            FancyArrowPatch(tuple(tail), tuple(head), arrowstyle="-|>", mutation_scale=22, linewidth=2, color="#333333")
        )


def shape_patch(shape: tuple) -> Patch:
    kind, *args = shape
    style = {"edgecolor": "#333333", "linewidth": 1.2}
    if kind == "circle":
        x, y, radius, color = args
        return Circle((x, y), radius, facecolor=color, **style)
    if kind == "ellipse":
        x, y, width, height, color = args
        return Ellipse((x, y), width, height, facecolor=color, **style)
    if kind == "rect":
        x, y, width, height, color = args
        return Rectangle((x, y), width, height, facecolor=color, **style)
    if kind == "poly":
        points, color = args
        return Polygon(points, closed=True, facecolor=color, **style)
    if kind == "arc":
        x, y, width, height, start, end, color = args
        return Arc((x, y), width, height, theta1=start, theta2=end, color=color, linewidth=6)
    raise ValueError(f"unknown shape {kind}")


def draw_labelled(fig: Figure, body: dict[str, Any]) -> None:
    ax = canvas_axes(fig)
    for shape in body["shapes"]:
        ax.add_patch(shape_patch(shape))
    box = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    for text, point, (tx, ty) in body["labels"]:
        if point is None:
            ax.text(tx, ty, text, ha="center", va="center", fontsize=14, bbox=box)
            continue
        align = "right" if tx < point[0] - 0.5 else "left" if tx > point[0] + 0.5 else "center"
        ax.annotate(
            text,
            xy=point,
            xytext=(tx, ty),
            ha=align,
            va="center",
            fontsize=14,
            bbox=box,
            arrowprops={"arrowstyle": "-", "linewidth": 1.3, "color": "#222222"},
        )


def draw_timeline(fig: Figure, body: dict[str, Any]) -> None:
    ax = canvas_axes(fig)
    events = body["events"]
    ax.add_patch(FancyArrowPatch((2, 33), (98, 33), arrowstyle="-|>", mutation_scale=25, linewidth=3, color="#555555"))
    step = 92 / len(events)
    for index, (year, text) in enumerate(events):
        x = 4 + step * (index + 0.5)
        side = 1 if index % 2 == 0 else -1
        ax.add_patch(Circle((x, 33), 1.2, facecolor=PALETTE[index % len(PALETTE)], edgecolor="#333333"))
        ax.plot([x, x], [33 + side * 1.2, 33 + side * 8], color="#777777", linewidth=1.5)
        ax.text(
            x, 33 + side * 10, year, ha="center", va="bottom" if side > 0 else "top", fontsize=15, fontweight="bold"
        )
        ax.text(
            x,
            33 + side * 16,
            wrap(text, 16),
            ha="center",
            va="bottom" if side > 0 else "top",
            fontsize=13,
            linespacing=1.25,
        )


def draw_table(fig: Figure, body: dict[str, Any]) -> None:
    ax = canvas_axes(fig)
    columns, rows = body["columns"], body["rows"]
    widths = [max(len(str(cell)) for cell in [name] + [row[i] for row in rows]) + 3 for i, name in enumerate(columns)]
    scale = min(94 / sum(widths), 2.6)
    widths = [width * scale for width in widths]
    row_height = min(7.0, 62 / (len(rows) + 1))
    fontsize = 14 if row_height >= 5.5 else 13
    left = (CANVAS_W - sum(widths)) / 2
    for row_index, row in enumerate([columns] + rows):
        y = CANVAS_H - 2 - (row_index + 1) * row_height
        x = left
        fill = "#c5d9f1" if row_index == 0 else ("#f2f2f2" if row_index % 2 == 0 else "white")
        for width, cell in zip(widths, row, strict=True):
            ax.add_patch(Rectangle((x, y), width, row_height, facecolor=fill, edgecolor="#666666"))
            ax.text(
                x + width / 2,
                y + row_height / 2,
                cell,
                ha="center",
                va="center",
                fontsize=fontsize,
                fontweight="bold" if row_index == 0 else "normal",
            )
            x += width


RENDERERS = {
    "bar": draw_bar,
    "line": draw_line,
    "pie": draw_pie,
    "flow": draw_flow,
    "labelled": draw_labelled,
    "timeline": draw_timeline,
    "table": draw_table,
}


def render(spec: Spec, path: Path) -> None:
    """Draw one spec to an 800x600 RGB PNG (no metadata, so reruns give identical bytes)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    fig.suptitle(spec.title, fontsize=20, fontweight="bold", y=0.96)
    RENDERERS[spec.kind](fig, spec.body)
    canvas.draw()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB").save(path, optimize=True)


# ---------------------------------------------------------------- assembly


def all_specs() -> list[Spec]:
    """Every image, named by kind and running number so that file names do not give topics away."""
    groups = rainfall_group() + population_group() + temperature_group()
    groups += science_fair_group() + travel_group() + timetable_group()
    specs = groups + SINGLES
    counters: dict[str, int] = {}
    for spec in specs:
        counters[spec.kind] = counters.get(spec.kind, 0) + 1
        spec.file = f"{spec.kind}_{counters[spec.kind]:02d}.png"
    return specs


def question_rows(specs: list[Spec]) -> list[dict[str, Any]]:
    """Per-image questions, then the group questions whose answer may be several images."""
    by_key = {spec.key: spec for spec in specs}
    rows = [{"q": text, "a": spec.file, "category": category} for spec in specs for category, text in spec.questions]
    for group, extras in GROUP_EXTRAS.items():
        for category, text, entities in extras:
            files = [by_key[f"{group}:{entity}"].file for entity in entities]
            rows.append({"q": text, "a": files[0] if len(files) == 1 else files, "category": category})
    return rows


def group_answers(by_key: dict[str, Spec]) -> list[tuple[str, str, str | float]]:
    """(spec key, question, expected) on the near-duplicate groups, read from the data each image is drawn from."""
    rows: list[tuple[str, str, str | float]] = []
    for city, month in (("Lisbon", 2), ("London", 9), ("Sydney", 1), ("Reykjavik", 10), ("Nairobi", 3)):
        question = f"How many mm of rain fall in {city} in {MONTH_NAMES[month]}?"
        rows.append((f"rainfall:{city}", question, RAINFALL_MM[city][month]))
    for country, year in (("Japan", "1990"), ("Brazil", "2010"), ("Egypt", "2020")):
        question = f"What was the population of {country} in {year}, in millions?"
        rows.append((f"population:{country}", question, POPULATION_MILLIONS[country][POPULATION_YEARS.index(year)]))
    for city, month in (("Moscow", 0), ("Dubai", 6)):
        question = f"What is the average temperature in {city} in {MONTH_NAMES[month]}, in °C?"
        rows.append((f"temperature:{city}", question, TEMPERATURE_C[city][month]))
    for year in ("2020", "2023"):
        winner = by_key[f"fair:{year}"].body["rows"][0][1]
        rows.append((f"fair:{year}", f"Who won first place at the {year} science fair?", winner))
    winning_score = int(by_key["fair:2021"].body["rows"][0][3])
    rows.append(("fair:2021", "What score did the winner of the 2021 science fair get?", winning_score))
    for cls, mode, how in (("6B", "Walk", "walk to school"), ("7C", "Bus", "take the bus to school")):
        share = by_key[f"travel:{cls}"].body["values"][TRAVEL_MODES.index(mode)]
        rows.append((f"travel:{cls}", f"What percentage of Class {cls} {how}?", share))
    for day in ("Monday", "Wednesday", "Friday"):
        subject = by_key[f"timetable:{day}"].body["rows"][0][2]
        rows.append((f"timetable:{day}", f"Which lesson does Class 5B have first on {day}?", subject))
    return rows


def visible_text(spec: Spec) -> str:
    """Every string the renderer draws for a spec, lower-cased, one per line."""
    body = spec.body
    parts = [spec.title, body.get("axis", ""), body.get("xlabel", ""), *body.get("columns", []), *body.get("steps", [])]
    parts += [label if isinstance(label, str) else label[0] for label in body.get("labels", [])]
    parts += [fmt(value) for value in body.get("values", [])]
    parts += [cell for row in body.get("rows", []) for cell in row]
    parts += [text for event in body.get("events", []) for text in event]
    return "\n".join(parts).lower()


def answer_rows(specs: list[Spec]) -> list[dict[str, Any]]:
    """Questions with an expected label or number (category: the image's kind), then ones the KB cannot answer."""
    by_key = {spec.key: spec for spec in specs}
    rows = []
    for key, question, expected in group_answers(by_key) + SINGLE_ANSWERS:
        spec = by_key[key]
        printed = expected if isinstance(expected, str) else fmt(expected)
        if printed.lower() not in visible_text(spec):
            raise AssertionError(f"{spec.file} does not print the expected answer {printed!r} to {question!r}")
        rows.append({"q": question, "a": spec.file, "answer": expected, "category": spec.kind})
    rows += [{"q": question, "a": None, "category": "off-topic"} for question in OFF_TOPIC]
    rows += [{"q": question, "a": None, "category": "near-miss"} for question in NEAR_MISS]
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def count_categories(rows: list[dict[str, Any]]) -> dict[str, int]:
    categories: dict[str, int] = {}
    for row in rows:
        categories[row["category"]] = categories.get(row["category"], 0) + 1
    return categories


def main() -> None:
    IMAGE_DIR.mkdir(parents=True, exist_ok=True)
    for old in IMAGE_DIR.glob("*.png"):
        old.unlink()
    specs = all_specs()
    for spec in specs:
        render(spec, IMAGE_DIR / spec.file)
    write_jsonl(
        HERE / "images.jsonl",
        [{"file": spec.file, "kind": spec.kind, "title": spec.title, "group": spec.group} for spec in specs],
    )
    rows = question_rows(specs)
    write_jsonl(HERE / "questions.jsonl", rows)
    answers = answer_rows(specs)
    write_jsonl(HERE / "answers.jsonl", answers)
    grouped = sum(spec.group is not None for spec in specs)
    print(f"{len(specs)} images ({grouped} in near-duplicate groups), {len(rows)} questions: {count_categories(rows)}")
    print(f"{len(answers)} answer questions: {count_categories(answers)}")


if __name__ == "__main__":
    main()
