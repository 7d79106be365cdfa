"""Other boards' own wire formats (Open Echo frames, the pic0rick shell), for dialects and twins."""
