"""A differential fuzzer with Samba's smbd as the oracle (issue 17); see fuzz/README.md.

    python -m fuzz.differential --seed 1 --count 2000 --json report.json
"""
