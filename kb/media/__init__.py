"""Media: safe decoding of image files and OCR of their text lines."""
