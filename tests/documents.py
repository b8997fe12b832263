"""Documents the tests write: multi-page PDFs of diagrams, SVG diagrams with text, and hostile SVGs and PDFs."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SECRET = "TOPSECRETVALUE"  # the content of a local file that hostile SVGs try to pull in

ENCRYPTED_PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj
4 0 obj << /Filter /Standard /V 1 /R 2 /P -4
  /O <0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef>
  /U <fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210> >> endobj
trailer << /Root 1 0 R /Encrypt 4 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] >>
%%EOF
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE svg [
  <!ENTITY a "lol lol lol lol lol lol lol lol lol lol">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
  <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
  <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
  <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><text y="50">&g;</text></svg>
"""

HOSTILE_DOCUMENTS = ("external_entity.svg", "billion_laughs.svg", "huge.svg", "encrypted.pdf", "broken.pdf")


def draw_page(lines: list[str], size: tuple[int, int] = (1000, 700)) -> Image.Image:
    """A white page with large black text lines and a frame: OCR reads it reliably."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    for row, text in enumerate(lines):
        draw.text((50, 50 + row * 90), text, fill="black", font=font)
    draw.rectangle((10, 10, size[0] - 10, size[1] - 10), outline="black", width=4)
    return image


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF with one drawn diagram per page."""
    images = [draw_page(lines) for lines in pages]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=100)
    return path


def svg_diagram(title: str, labels: list[str]) -> str:
    """An SVG diagram: a title, boxes with labels and arrows between them."""
    parts = [f'<text x="40" y="60" font-size="40" font-family="sans-serif">{title}</text>']
    for number, label in enumerate(labels):
        x = 40 + number * 300
        parts.append(f'<rect x="{x}" y="120" width="260" height="100" fill="none" stroke="black" stroke-width="3"/>')
        parts.append(f'<text x="{x + 20}" y="185" font-size="34" font-family="sans-serif">{label}</text>')
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="960" height="260" viewBox="0 0 960 260">'
        '<rect width="960" height="260" fill="white"/>' + "".join(parts) + "</svg>"
    )


def write_hostile_documents(folder: Path) -> Path:
    """The files of HOSTILE_DOCUMENTS, plus secret.txt whose content must never reach the knowledge base."""
    secret = folder / "secret.txt"
    secret.write_text(SECRET)
    (folder / "external_entity.svg").write_text(
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY secret SYSTEM "file://{secret}">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="100">'
        '<text x="10" y="50" font-size="30">&secret;</text></svg>'
    )
    (folder / "billion_laughs.svg").write_text(BILLION_LAUGHS)
    (folder / "huge.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="100000000" height="100000000">'
        '<text x="10" y="50" font-size="30">huge</text></svg>'
    )
    (folder / "encrypted.pdf").write_bytes(ENCRYPTED_PDF)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> garbage")
    return secret
