"""Hostile scripts shared by the sandbox tests."""

# A generator whose `finally` spins, left in a reference cycle: collected later, it
# would run during some other script in the same sandbox process.
POISONED_GENERATOR = (
    "def g():\n"
    "    try:\n"
    "        yield 1\n"
    "    finally:\n"
    "        while True:\n"
    "            pass\n"
    "x = g()\n"
    "for y in x:\n"
    "    break\n"
    "cycle = [x]\n"
    "cycle.append(cycle)\n"
    "del x, cycle\n"
)
