"""Models behind small interfaces: vision-language backends chosen by a spec string, and the text embedder."""
