"""Knowledge base: the facts, steps and codes, as data; and the bounce reader."""
