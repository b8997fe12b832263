"""The Streamlit page (app.py): renders what the kb package returns; no model code."""
