"""Small image folders for tests: real clothing photos copied from the shared offline datasets."""
import shutil
from pathlib import Path

# Visually distinct classes, so a small CNN separates them within a few epochs on CPU.
DISTINCT = ("hat", "pants", "shoes")


def copy_classes(shared: Path, dest: Path, classes=DISTINCT, per_class: int = 30, split: str = "train",
                 start: int = 0) -> Path:
    """`dest/<class>/*.jpg`: `per_class` photos of each class from clothing-small's `split`."""
    for name in classes:
        source = shared / "clothing-small" / split / name
        (dest / name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(source.iterdir())[start:start + per_class]:
            shutil.copyfile(photo, dest / name / photo.name)
    return dest


def tree(folder: Path) -> list[str]:
    """Every path under `folder`, relative, for asserting that nothing was written."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []
