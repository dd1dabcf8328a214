"""The exported script's reader of an image folder, as a template of its source: it reads each photo
exactly as Layerlab stored it (EXIF orientation, the dataset's fit, colour mode, bilinear resizing)
so that the script trains on byte-identical arrays. export_script.py fills in `$fit` and
`$suffixes` (the image file names Layerlab reads).
"""
from __future__ import annotations

from string import Template

LOAD_FOLDER = Template('''
FIT = $fit  # how Layerlab fitted each photo into INPUT_SHAPE: "stretch", "crop" (centre) or "pad" (black bars)
IMAGE_SUFFIXES = $suffixes


def read_image(path):
    """One photo as Layerlab stored it: turned upright from its EXIF orientation, then fitted to
    INPUT_SHAPE with the same bilinear resizing, as uint8."""
    size = (INPUT_SHAPE[1], INPUT_SHAPE[0])  # width, height
    mode = "RGB" if INPUT_SHAPE[2] == 3 else "L"
    with Image.open(path) as image:
        # A JPEG decodes at 1/2, 1/4 or 1/8 scale when that still covers the size: faster, as in Layerlab.
        image.draft(mode, size)
        upright = ImageOps.exif_transpose(image)
        # A palette picture goes through RGBA, so its transparent pixels come out as Layerlab's did.
        picture = upright.convert("RGBA").convert(mode) if upright.mode in ("P", "PA") else upright.convert(mode)
        if FIT == "stretch":
            picture = picture.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        elif FIT == "crop":
            picture = ImageOps.fit(picture, size, Image.Resampling.BILINEAR)
        else:
            picture = ImageOps.pad(picture, size, Image.Resampling.BILINEAR, color=0)
        return np.asarray(picture, dtype=np.uint8).reshape(INPUT_SHAPE)


def read_folder(folder):
    """Every image under folder/<class>/ (hidden files and links left out, as Layerlab does), as uint8
    images and integer labels; a file that cannot be read is named and skipped."""
    images, labels = [], []
    for label, name in enumerate(CLASS_NAMES):
        class_folder = pathlib.Path(folder) / name
        if not class_folder.is_dir():
            continue
        for path in sorted(class_folder.rglob("*")):
            hidden = path.name.startswith(".") or "__MACOSX" in path.parts or path.is_symlink()
            if hidden or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                images.append(read_image(path))
            except (OSError, SyntaxError, ValueError) as error:
                print(f"skipped {path}: {error}")
                continue
            labels.append(label)
    if not images:
        raise SystemExit(f"No images of the classes {CLASS_NAMES} under {folder}")
    return np.stack(images), np.array(labels, dtype="int64")

def hold_out_test(x, y, share=0.2, seed=0):
    """A folder without splits: Layerlab tests on a seeded `share` of each class."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        take = max(int(round(len(members) * share)), 1) if len(members) >= 2 else 0
        test[rng.permutation(members)[:take]] = True
    return (x[~test], y[~test]), (x[test], y[test])


def load_data(path):
    """train/ to train on and test/ (else validation/ or val/) to test on, each with one folder
    per class; or one folder per class directly, a share of which is held out for testing."""
    if path is None:
        raise SystemExit("This dataset is a folder of images: pass --data FOLDER")
    root = pathlib.Path(path)
    if not (root / "train").is_dir():
        return hold_out_test(*read_folder(root))
    test = next((root / name for name in ("test", "validation", "val") if (root / name).is_dir()), None)
    if test is None:
        return hold_out_test(*read_folder(root / "train"))
    return read_folder(root / "train"), read_folder(test)


def read_validation(path):
    """The folder's own validation/ (or val/) beside train/, which Layerlab validates on; or None."""
    root = pathlib.Path(path)
    given = next((root / name for name in ("validation", "val") if (root / name).is_dir()), None)
    return read_folder(given) if (root / "train").is_dir() and given is not None else None
''')
