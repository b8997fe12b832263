"""Generate the demo image collection: classroom charts and diagrams (PNG) plus bundled photos (JPEG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Ellipse, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle, Wedge
from PIL import Image
from skimage import data as skimage_data

HERE = Path(__file__).resolve().parent
WIDTH_IN, HEIGHT_IN, DPI = 10.0, 7.0, 100  # 1000 x 700 pixels
CANVAS_W, CANVAS_H = 100.0, 61.6  # data units of the free-drawing area (10 px per unit)
PHOTO_MAX_SIDE = 800
BLUE, ORANGE, GREEN, RED = "#4e79a7", "#f28e2b", "#59a14f", "#e15759"
LABEL_BOX = {"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.9}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

matplotlib.rcParams.update({"font.family": "DejaVu Sans", "axes.unicode_minus": False})


# ---------------------------------------------------------------- helpers


def new_figure(title: str) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=24, fontweight="bold", y=0.96)
    return fig


def drawing_axes(fig: Figure) -> Axes:
    """Axes below the title for free drawing, CANVAS_W x CANVAS_H data units, no frame."""
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.88))
    ax.set_xlim(0, CANVAS_W)
    ax.set_ylim(0, CANVAS_H)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def chart_axes(fig: Figure) -> Axes:
    ax = fig.add_axes((0.1, 0.12, 0.86, 0.74))
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=15)
    return ax


def staggered(labels: list[str]) -> list[str]:
    """Every second axis label one line lower, so OCR reads the labels as separate words."""
    return [label if index % 2 == 0 else "\n" + label for index, label in enumerate(labels)]


def label(ax: Axes, text: str, point: tuple[float, float], at: tuple[float, float], size: int = 16) -> None:
    """A text label at `at` with a leader line to `point`; text left of its point is right-aligned."""
    align = "right" if at[0] < point[0] - 0.5 else "left" if at[0] > point[0] + 0.5 else "center"
    ax.annotate(
        text,
        xy=point,
        xytext=at,
        ha=align,
        va="center",
        fontsize=size,
        bbox=LABEL_BOX,
        arrowprops={"arrowstyle": "-", "linewidth": 1.4, "color": "#222222"},
    )


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str = "#333333") -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=25, linewidth=2.5, color=color))


def save_png(fig: Figure, name: str) -> None:
    """Render to an RGB PNG without metadata, so reruns give identical bytes."""
    fig.canvas.draw()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB").save(HERE / name, optimize=True)


# ---------------------------------------------------------------- charts


def rainfall_lisbon() -> None:
    values = [100, 89, 58, 65, 52, 15, 4, 6, 33, 100, 128, 127]  # approximate climate normals
    fig = new_figure("Monthly rainfall in Lisbon")
    ax = chart_axes(fig)
    ax.bar(range(12), values, color=BLUE)
    for month, value in enumerate(values):
        ax.text(month, value + 1.5, str(value), ha="center", va="bottom", fontsize=14)
    ax.set_xticks(range(12), staggered(MONTHS))
    ax.set_ylim(0, 145)
    ax.set_ylabel("Rainfall (mm)", fontsize=16)
    save_png(fig, "lisbon_rainfall_bar_chart.png")


def temperature_toronto() -> None:
    values = [-3.7, -2.6, 1.4, 7.9, 14.1, 19.4, 22.3, 21.5, 17.2, 10.7, 4.9, -0.5]  # approximate normals
    fig = new_figure("Average monthly temperature in Toronto")
    ax = chart_axes(fig)
    ax.plot(range(12), values, marker="o", color=RED, linewidth=3)
    for month, value in enumerate(values):
        ax.text(
            month,
            value + 1.2,
            f"{value:g}",
            ha="center",
            va="bottom",
            fontsize=14,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
        )
    ax.axhline(0, color="#999999", linewidth=1)
    ax.set_xticks(range(12), staggered(MONTHS))
    ax.set_ylim(-7, 27)
    ax.set_ylabel("Temperature (°C)", fontsize=16)
    ax.grid(axis="y", alpha=0.3)
    save_png(fig, "toronto_temperature_line_chart.png")


def atmosphere_pie() -> None:
    gases = ["Nitrogen", "Oxygen", "Argon", "Carbon dioxide", "Other gases"]
    shares = [78, 21, 0.9, 0.04, 0.06]  # dry air by volume, rounded
    fig = new_figure("Composition of Earth's atmosphere")
    ax = fig.add_axes((0.02, 0.04, 0.5, 0.8))
    colors = [BLUE, ORANGE, GREEN, RED, "#b07aa1"]
    wedges, _ = ax.pie(
        shares, colors=colors, startangle=90, counterclock=False, wedgeprops={"edgecolor": "white", "linewidth": 2}
    )
    legend = [f"{gas}: {share:g}%" for gas, share in zip(gases, shares, strict=True)]
    ax.legend(wedges, legend, loc="center left", bbox_to_anchor=(1.0, 0.55), fontsize=18, frameon=False)
    fig.text(0.55, 0.16, "Dry air, by volume", fontsize=16, color="#444444")
    save_png(fig, "atmosphere_composition_pie_chart.png")


def boiling_points_table() -> None:
    rows = [
        ("Nitrogen", "-196"),
        ("Oxygen", "-183"),
        ("Acetone", "56"),
        ("Ethanol", "78"),
        ("Water", "100"),
        ("Mercury", "357"),
        ("Table salt", "1465"),
        ("Iron", "2862"),
    ]
    fig = new_figure("Boiling points of substances")
    ax = drawing_axes(fig)
    widths, height, left = (30.0, 30.0), 6.0, 20.0
    for index, row in enumerate([("Substance", "Boiling point (°C)")] + rows):
        y = CANVAS_H - 4 - (index + 1) * height
        fill = "#c5d9f1" if index == 0 else ("#f2f2f2" if index % 2 == 0 else "white")
        x = left
        for width, cell in zip(widths, row, strict=True):
            ax.add_patch(Rectangle((x, y), width, height, facecolor=fill, edgecolor="#666666"))
            ax.text(
                x + width / 2,
                y + height / 2,
                cell,
                ha="center",
                va="center",
                fontsize=17,
                fontweight="bold" if index == 0 else "normal",
            )
            x += width
    ax.text(50, 1.5, "At normal air pressure (sea level)", ha="center", fontsize=15, color="#444444")
    save_png(fig, "boiling_points_table.png")


def periodic_table_excerpt() -> None:
    elements = [  # (number, symbol, name, atomic mass, category colour)
        (1, "H", "Hydrogen", "1.008", "#a5d6a7"),
        (2, "He", "Helium", "4.003", "#ce93d8"),
        (3, "Li", "Lithium", "6.94", "#ef9a9a"),
        (4, "Be", "Beryllium", "9.012", "#ffcc80"),
        (5, "B", "Boron", "10.81", "#b0bec5"),
        (6, "C", "Carbon", "12.011", "#a5d6a7"),
        (7, "N", "Nitrogen", "14.007", "#a5d6a7"),
        (8, "O", "Oxygen", "15.999", "#a5d6a7"),
        (9, "F", "Fluorine", "18.998", "#a5d6a7"),
        (10, "Ne", "Neon", "20.180", "#ce93d8"),
        (11, "Na", "Sodium", "22.990", "#ef9a9a"),
        (12, "Mg", "Magnesium", "24.305", "#ffcc80"),
        (13, "Al", "Aluminium", "26.982", "#90caf9"),
        (14, "Si", "Silicon", "28.085", "#b0bec5"),
        (15, "P", "Phosphorus", "30.974", "#a5d6a7"),
        (16, "S", "Sulfur", "32.06", "#a5d6a7"),
        (17, "Cl", "Chlorine", "35.45", "#a5d6a7"),
        (18, "Ar", "Argon", "39.95", "#ce93d8"),
    ]
    columns = {1: [0, 7], 2: list(range(8)), 3: list(range(8))}  # period -> the 8 main-group columns used
    fig = new_figure("Periodic table: the first 18 elements")
    ax = drawing_axes(fig)
    tile_w, tile_h = 11.6, 17.5
    slots = [(period, column) for period, used in columns.items() for column in used]
    for (number, symbol, name, mass, color), (period, column) in zip(elements, slots, strict=True):
        x, y = 3.6 + column * tile_w, CANVAS_H - 3 - period * (tile_h + 1)
        ax.add_patch(Rectangle((x, y), tile_w - 0.6, tile_h, facecolor=color, edgecolor="#444444"))
        center = x + (tile_w - 0.6) / 2
        ax.text(x + 0.8, y + tile_h - 2.2, str(number), fontsize=14, va="center")
        ax.text(center, y + tile_h * 0.55, symbol, fontsize=26, fontweight="bold", ha="center", va="center")
        ax.text(center, y + 4.2, name, fontsize=12, ha="center", va="center")
        ax.text(center, y + 1.7, mass, fontsize=12, ha="center", va="center")
    save_png(fig, "periodic_table_first_18_elements.png")


# ---------------------------------------------------------------- diagrams


def food_chain() -> None:
    fig = new_figure("A grassland food chain")
    ax = drawing_axes(fig)
    items = [
        ("Sun", "Energy source"),
        ("Grass", "Producer"),
        ("Grasshopper", "Primary consumer"),
        ("Frog", "Secondary consumer"),
        ("Snake", "Tertiary consumer"),
        ("Hawk", "Top predator"),
    ]
    colors = ["#fff176", "#c5e1a5", "#dcedc8", "#b2dfdb", "#ffe0b2", "#d7ccc8"]
    step, half_w, half_h = CANVAS_H / len(items), 11.0, 3.6
    for index, ((name, role), color) in enumerate(zip(items, colors, strict=True)):
        y = CANVAS_H - step * (index + 0.5)
        ax.add_patch(
            FancyBboxPatch(
                (36 - half_w, y - half_h),
                2 * half_w,
                2 * half_h,
                boxstyle="round,pad=0,rounding_size=1.5",
                facecolor=color,
                edgecolor="#333333",
            )
        )
        ax.text(36, y, name, ha="center", va="center", fontsize=18, fontweight="bold")
        ax.text(51, y, role, ha="left", va="center", fontsize=16)
        if index:
            arrow(ax, (36, y + step - half_h - 0.3), (36, y + half_h + 0.3))
    ax.text(
        88,
        CANVAS_H / 2,
        "Each arrow shows\nenergy flowing\nfrom the food to\nthe animal that\neats it.",
        ha="center",
        va="center",
        fontsize=15,
        linespacing=1.4,
    )
    save_png(fig, "food_chain.png")


def space_timeline() -> None:
    events = [
        ("1957", "Sputnik 1, first satellite"),
        ("1961", "Yuri Gagarin, first human in space"),
        ("1969", "Apollo 11: first Moon landing"),
        ("1981", "First Space Shuttle flight"),
        ("1990", "Hubble Space Telescope"),
        ("1998", "First module of the ISS"),
        ("2012", "Curiosity rover lands on Mars"),
        ("2021", "James Webb Space Telescope"),
    ]
    fig = new_figure("Space exploration milestones")
    ax = drawing_axes(fig)
    arrow(ax, (1, 30), (99, 30), "#555555")
    step = 80 / (len(events) - 1)
    for index, (year, text) in enumerate(events):
        x, side = 9 + step * index, 1 if index % 2 == 0 else -1
        ax.add_patch(Circle((x, 30), 1.1, facecolor=BLUE, edgecolor="#222222", zorder=3))
        ax.plot([x, x], [30 + side * 1.1, 30 + side * 7], color="#777777", linewidth=1.5)
        valign = "bottom" if side > 0 else "top"
        ax.text(x, 30 + side * 8, year, ha="center", va=valign, fontsize=18, fontweight="bold")
        words = text.split(" ")
        middle = (len(words) + 1) // 2
        two_lines = " ".join(words[:middle]) + "\n" + " ".join(words[middle:])
        ax.text(x, 30 + side * 14, two_lines, ha="center", va=valign, fontsize=14, linespacing=1.3)
    save_png(fig, "space_exploration_timeline.png")


def water_cycle() -> None:
    fig = new_figure("The water cycle")
    ax = drawing_axes(fig)
    ax.add_patch(Rectangle((0, 0), 100, CANVAS_H, facecolor="#e3f2fd", edgecolor="none"))
    ax.add_patch(Polygon([(0, 0), (60, 0), (60, 12), (0, 12)], facecolor="#1e88e5", edgecolor="none"))
    ax.add_patch(
        Polygon(
            [(50, 0), (100, 0), (100, 34), (86, 44), (74, 30), (64, 20), (55, 12)],
            facecolor="#7cb342",
            edgecolor="none",
        )
    )
    ax.add_patch(Polygon([(82, 41), (86, 44), (90, 41.2)], facecolor="white", edgecolor="none"))
    ax.add_patch(Circle((10, 50), 6, facecolor="#fdd835", edgecolor="#f9a825", linewidth=2))
    for x, y, radius in [(52, 50, 4.5), (57, 53, 5.5), (63, 51, 5), (68, 49, 4)]:
        ax.add_patch(Circle((x, y), radius, facecolor="#b0bec5", edgecolor="none"))
    for x in (55, 59, 63, 67):
        ax.plot([x, x - 2], [43, 34], color="#1565c0", linewidth=2, linestyle=(0, (3, 2)))
    arrow(ax, (28, 14), (44, 44))
    arrow(ax, (74, 38), (76, 26))
    arrow(ax, (72, 18), (50, 8))
    ax.text(27, 30, "Evaporation", fontsize=18, fontweight="bold", ha="right", bbox=LABEL_BOX)
    ax.text(27, 25.5, "The sun heats water\ninto vapour", fontsize=14, ha="right", va="top")
    ax.text(74, 57, "Condensation", fontsize=18, fontweight="bold", ha="left", bbox=LABEL_BOX)
    ax.text(75, 52.5, "Vapour cools and\nforms clouds", fontsize=14, ha="left", va="top")
    ax.text(79, 30, "Precipitation", fontsize=18, fontweight="bold", ha="left", bbox=LABEL_BOX)
    ax.text(80, 25.5, "Rain and snow fall", fontsize=14, ha="left", va="top", bbox=LABEL_BOX)
    ax.text(30, 5, "Collection", fontsize=18, fontweight="bold", ha="center", color="white")
    ax.text(30, 1.5, "Water gathers in seas and rivers", fontsize=14, ha="center", color="white")
    save_png(fig, "water_cycle_diagram.png")


def flower() -> None:
    fig = new_figure("Parts of a flower")
    ax = drawing_axes(fig)
    ax.add_patch(Rectangle((49.2, 2), 1.6, 27, facecolor="#558b2f", edgecolor="#33691e"))
    ax.add_patch(Ellipse((43, 12), 12, 4, angle=25, facecolor="#7cb342", edgecolor="#33691e"))
    ax.add_patch(Ellipse((57, 17), 12, 4, angle=-25, facecolor="#7cb342", edgecolor="#33691e"))
    for angle, x in ((40, 40), (-40, 60)):
        ax.add_patch(Ellipse((x, 41), 10, 24, angle=angle, facecolor="#f48fb1", edgecolor="#ad1457"))
    for points in ([(50, 29), (42, 33), (46, 30)], [(50, 29), (58, 33), (54, 30)]):
        ax.add_patch(Polygon(points, facecolor="#689f38", edgecolor="#33691e"))
    ax.add_patch(Ellipse((50, 32), 6, 5, facecolor="#aed581", edgecolor="#33691e"))
    ax.add_patch(Rectangle((49.5, 34.3), 1, 11, facecolor="#c5e1a5", edgecolor="#33691e"))
    ax.add_patch(Ellipse((50, 46.3), 4, 2, facecolor="#9ccc65", edgecolor="#33691e"))
    for bottom, top in (((47, 33), (43, 44)), ((53, 33), (57, 44))):
        ax.plot([bottom[0], top[0]], [bottom[1], top[1]], color="#827717", linewidth=2)
        ax.add_patch(Ellipse(top, 2.6, 1.8, facecolor="#fbc02d", edgecolor="#827717"))
    label(ax, "Stigma", (50, 46.5), (62, 55))
    label(ax, "Style", (50.5, 40), (66, 47))
    label(ax, "Ovary", (52, 32), (72, 34))
    label(ax, "Petal", (64, 42), (78, 41))
    label(ax, "Anther", (43, 44.5), (30, 54))
    label(ax, "Filament", (45, 38), (24, 45))
    label(ax, "Sepal", (44, 32.5), (26, 32))
    label(ax, "Leaf", (41, 12), (26, 14))
    label(ax, "Stem", (50.8, 8), (66, 6))
    ax.text(2, 24, "Stamen (male part):\nanther + filament", fontsize=14, va="top")
    ax.text(98, 24, "Pistil (female part):\nstigma + style + ovary", fontsize=14, va="top", ha="right")
    save_png(fig, "parts_of_a_flower.png")


def plant_cell() -> None:
    fig = new_figure("Parts of a plant cell")
    ax = drawing_axes(fig)
    ax.add_patch(
        FancyBboxPatch(
            (28, 5),
            44,
            50,
            boxstyle="round,pad=0,rounding_size=3",
            facecolor="#dcedc8",
            edgecolor="#33691e",
            linewidth=5,
        )
    )
    ax.add_patch(
        FancyBboxPatch(
            (29.5, 6.5),
            41,
            47,
            boxstyle="round,pad=0,rounding_size=2.5",
            facecolor="#f1f8e9",
            edgecolor="#8d6e63",
            linewidth=1.5,
        )
    )
    ax.add_patch(Ellipse((50, 28), 26, 30, facecolor="#b3e5fc", edgecolor="#0277bd", linewidth=1.5))
    ax.add_patch(Circle((37, 46), 5, facecolor="#b39ddb", edgecolor="#4527a0"))
    ax.add_patch(Circle((37, 46), 1.8, facecolor="#5e35b1", edgecolor="none"))
    for x, y, angle in [(34, 30, 80), (34, 19, 100), (66, 44, 75), (66, 30, 95), (60, 10, 10), (44, 10, 170)]:
        ax.add_patch(Ellipse((x, y), 6, 3, angle=angle, facecolor="#43a047", edgecolor="#1b5e20"))
    for x, y in [(62, 50), (66, 17)]:
        ax.add_patch(Ellipse((x, y), 4.5, 2.2, facecolor="#ef6c00", edgecolor="#bf360c"))
    label(ax, "Cell wall", (28.2, 40), (21, 40))
    label(ax, "Cell membrane", (29.7, 24), (21, 24))
    label(ax, "Nucleus", (34, 49), (21, 55))
    label(ax, "Chloroplast", (34, 19), (21, 12))
    label(ax, "Vacuole", (56, 33), (82, 36))
    label(ax, "Cytoplasm", (68, 38), (82, 46))
    label(ax, "Mitochondrion", (62.5, 50), (78, 57))
    label(ax, "Chloroplast", (66, 30), (82, 27))
    ax.text(86, 12, "Chloroplasts use\nsunlight to make\nfood for the plant", fontsize=14, ha="center", va="center")
    save_png(fig, "parts_of_a_plant_cell.png")


def electric_circuit() -> None:
    fig = new_figure("A simple electric circuit")
    ax = drawing_axes(fig)
    wire = {"color": "#222222", "linewidth": 3}
    ax.plot([30, 30, 46], [26, 50, 50], **wire)  # left side up to the bulb
    ax.plot([54, 70, 70], [50, 50, 34], **wire)  # bulb to the switch
    ax.plot([70, 70, 30, 30], [26, 10, 10, 22], **wire)  # switch, bottom wire, back to the battery
    ax.plot([26, 34], [26, 26], color="#222222", linewidth=4)  # battery: long plate (+)
    ax.plot([28, 32], [22, 22], color="#222222", linewidth=7)  # battery: short plate (-)
    ax.text(35, 27, "+", fontsize=20, fontweight="bold", va="center")
    ax.text(33.5, 20.5, "-", fontsize=22, fontweight="bold", va="center")
    ax.add_patch(Circle((50, 50), 4, facecolor="#fff59d", edgecolor="#222222", linewidth=3))
    ax.plot([47.2, 52.8], [47.2, 52.8], **wire)
    ax.plot([47.2, 52.8], [52.8, 47.2], **wire)
    for y in (34, 26):
        ax.add_patch(Circle((70, y), 0.8, facecolor="white", edgecolor="#222222", linewidth=2, zorder=3))
    ax.plot([70, 69.4], [26, 34], **wire)  # closed switch
    label(ax, "Battery (cell)", (26, 24), (20, 34))
    label(ax, "Bulb (lamp)", (54, 52), (66, 57))
    label(ax, "Switch (closed)", (70.5, 30), (80, 30))
    label(ax, "Wire", (50, 10), (50, 3))
    arrow(ax, (40, 10.8), (60, 10.8), RED)
    arrow(ax, (69.2, 44), (69.2, 38), RED)
    ax.text(
        50,
        30,
        "Electric current flows\nfrom + to - around\nthe closed loop",
        ha="center",
        va="center",
        fontsize=16,
        color="#b71c1c",
    )
    save_png(fig, "simple_electric_circuit.png")


def moon_phases() -> None:
    names = [
        "New Moon",
        "Waxing crescent",
        "First quarter",
        "Waxing gibbous",
        "Full Moon",
        "Waning gibbous",
        "Last quarter",
        "Waning crescent",
    ]
    fig = new_figure("Phases of the Moon")
    ax = drawing_axes(fig)
    lit, dark, radius = "#fff8d6", "#37474f", 8.0
    for index, name in enumerate(names):
        row, column = divmod(index, 4)
        center = (12.5 + column * 25, 44 - row * 29)
        ax.add_patch(Circle(center, radius, facecolor=dark, edgecolor="#222222", linewidth=1.5))
        angle = np.pi * index / 4  # 0 = new, pi = full
        if 0 < index < 8 and index != 4:
            start = -90 if index < 4 else 90  # waxing: lit on the right; waning: lit on the left
            ax.add_patch(Wedge(center, radius, start, start + 180, facecolor=lit, edgecolor="none"))
            terminator = 2 * radius * abs(np.cos(angle))
            color = dark if index in (1, 7) else lit  # crescents are mostly dark, gibbous mostly lit
            ax.add_patch(Ellipse(center, terminator, 2 * radius, facecolor=color, edgecolor="none"))
        if index == 4:
            ax.add_patch(Circle(center, radius, facecolor=lit, edgecolor="#222222", linewidth=1.5))
        ax.add_patch(Circle(center, radius, facecolor="none", edgecolor="#222222", linewidth=1.5))
        ax.text(center[0], center[1] - radius - 3, name, ha="center", va="center", fontsize=16)
    save_png(fig, "phases_of_the_moon.png")


# ---------------------------------------------------------------- photos


PHOTOS = {  # file name -> loader of a public-domain / CC0 photo bundled with scikit-image
    "astronaut_eileen_collins.jpg": skimage_data.astronaut,
    "coffee_cup.jpg": skimage_data.coffee,
    "cat_chelsea.jpg": skimage_data.chelsea,
    "rocket_launch.jpg": skimage_data.rocket,
}


def save_photos() -> None:
    for name, load in PHOTOS.items():
        photo = Image.fromarray(load()).convert("RGB")
        photo.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE), Image.Resampling.LANCZOS)
        photo.save(HERE / name, quality=88, optimize=True)


def main() -> None:
    drawings = [
        rainfall_lisbon,
        temperature_toronto,
        atmosphere_pie,
        boiling_points_table,
        periodic_table_excerpt,
        food_chain,
        space_timeline,
        water_cycle,
        flower,
        plant_cell,
        electric_circuit,
        moon_phases,
    ]
    for draw in drawings:
        draw()
    save_photos()
    print(f"wrote {len(drawings)} diagrams and {len(PHOTOS)} photos to {HERE}")


if __name__ == "__main__":
    main()
