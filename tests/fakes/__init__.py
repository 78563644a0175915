"""Small fake servers on 127.0.0.1 standing in for the platforms' clouds in tests and benchmarks."""
