"""QR images of a payment's QR content (SVG, no image library needed)."""

import io

import qrcode
import qrcode.image.svg


def qr_svg(content: str) -> str:
    image = qrcode.make(content, image_factory=qrcode.image.svg.SvgPathImage, box_size=12)
    buffer = io.BytesIO()
    image.save(buffer)
    text = buffer.getvalue().decode()
    # Inline in HTML: drop the XML declaration.
    return text.split("?>", 1)[1].lstrip() if text.startswith("<?xml") else text
