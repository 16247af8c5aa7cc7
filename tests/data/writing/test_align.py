"""Face alignment: InsightFace's float32 similarity estimate (scikit-image as the reference),
landmarks landing on the template, the landmark files (TSV and face2rec .lst), skips and the
`tools/align.py` command line."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recognition.commands.align import main as align_main
from recognition.data.writing import align
from tests.support import REPO

# InsightFace's IJB / face_preprocess template: 96x112 points, float32, then x += 8.
INSIGHTFACE_96 = [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                  [33.5493, 92.3655], [62.7299, 92.2041]]


def reference_matrix(landmarks, template):
    """What InsightFace computes: skimage's SimilarityTransform on float32 arrays."""
    transform = pytest.importorskip("skimage.transform")
    tform = transform.SimilarityTransform()
    assert tform.estimate(np.asarray(landmarks, np.float32), np.asarray(template, np.float32))
    return tform.params[0:2, :]


def random_faces(count, seed, jitter=2.0):
    """Template faces rotated, scaled, shifted and jittered into photo coordinates (float32)."""
    rng = np.random.default_rng(seed)
    base = align.ARCFACE_TEMPLATE.astype(np.float64)
    for _ in range(count):
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 6.0)
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = base @ rot.T + rng.uniform(-100, 900, 2) + rng.normal(0, jitter * scale, (5, 2))
        yield pts.astype(np.float32)


def blob_image(landmarks, shape=(300, 260)):
    """A grey photo with one small bright Gaussian blob centred on each landmark."""
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float64)
    img = np.zeros(shape, np.float64)
    for x, y in landmarks:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.5 ** 2))
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def blob_centres(aligned, template, radius=6):
    """Intensity-weighted centre of the blob near each template point."""
    img = aligned.astype(np.float64)
    if img.ndim == 3:
        img = img.mean(axis=2)
    centres = []
    for x, y in template:
        x0, y0 = int(round(x)) - radius, int(round(y)) - radius
        win = img[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
        yy, xx = np.mgrid[y0:y0 + win.shape[0], x0:x0 + win.shape[1]]
        centres.append([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])
    return np.array(centres)


# ---- the estimate --------------------------------------------------------------------------

def test_template_is_insightfaces_float32_template():
    theirs = np.array(INSIGHTFACE_96, dtype=np.float32)
    theirs[:, 0] += 8.0
    np.testing.assert_array_equal(align.ARCFACE_TEMPLATE, theirs)
    assert align.ARCFACE_TEMPLATE.dtype == np.float32
    # float32 arithmetic: the last x is one ulp off float32(70.7299), as in InsightFace
    assert align.ARCFACE_TEMPLATE[4, 0] != np.float32(70.7299)
    np.testing.assert_array_equal(align.arcface_template(224), theirs * np.float32(2.0))


def test_similarity_transform_equals_skimage_on_float32_bit_for_bit():
    for pts in random_faces(300, seed=0):
        np.testing.assert_array_equal(align.similarity_transform(pts),
                                      reference_matrix(pts, align.ARCFACE_TEMPLATE))
    for pts in random_faces(50, seed=1):  # another template size, float64 input taken as float32
        dst = align.arcface_template(160)
        np.testing.assert_array_equal(align.similarity_transform(pts.astype(np.float64), dst),
                                      reference_matrix(pts, dst))


def test_similarity_transform_recovers_an_exact_similarity():
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    template = align.ARCFACE_TEMPLATE.astype(np.float64)
    src = (template - shift) @ np.linalg.inv(rot).T  # template = rot @ src + shift
    np.testing.assert_allclose(align.similarity_transform(src), np.c_[rot, shift], atol=2e-4)


@pytest.mark.parametrize("size", [112, 224])
def test_aligned_landmarks_land_on_the_template(size):
    for pts in random_faces(4, seed=2, jitter=0.0):  # an exact similarity of the template
        # keep the face inside a 300x260 photo at a sensible scale
        pts = (pts - pts.mean(0)) / np.linalg.norm(pts - pts.mean(0)) * 70 + [130, 150]
        aligned = align.align_face(blob_image(pts), pts, size)
        assert aligned.shape == (size, size)
        template = align.arcface_template(size)
        np.testing.assert_allclose(blob_centres(aligned, template, radius=size // 18), template,
                                   atol=1.0)


def test_align_face_is_insightfaces_warp():
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (300, 260, 3)).astype(np.uint8)
    pts = next(random_faces(1, seed=4))
    pts = (pts - pts.mean(0)) / np.linalg.norm(pts - pts.mean(0)) * 80 + [130, 150]
    pts = pts.astype(np.float32)
    theirs = cv2.warpAffine(photo, reference_matrix(pts, align.ARCFACE_TEMPLATE), (112, 112),
                            borderValue=0.0)
    np.testing.assert_array_equal(align.align_face(photo, pts), theirs)


@pytest.mark.parametrize("points, why", [
    (np.full((5, 2), 40.0), "one point"),
    (np.c_[np.arange(5) * 10.0, np.arange(5) * 5.0 + 3], "collinear"),
    (np.c_[112 - align.ARCFACE_TEMPLATE[:, 0], align.ARCFACE_TEMPLATE[:, 1]], "scale"),
    (align.ARCFACE_TEMPLATE[[1, 0, 2, 4, 3]], "scale"),
    (np.r_[[[np.nan, 1.0]], align.ARCFACE_TEMPLATE[1:]], "finite"),
])
def test_degenerate_landmarks_are_named(points, why):
    assert why in align.landmark_problem(points)


def test_real_faces_even_in_profile_are_not_degenerate():
    for pts in random_faces(20, seed=5):
        assert align.landmark_problem(pts) is None
    profile = align.ARCFACE_TEMPLATE * [0.15, 1.0]
    assert align.landmark_problem(profile) is None


# ---- folders and the command line ----------------------------------------------------------

def photo_landmarks(degrees, scale, shift):
    """The template turned, scaled and moved into a 300x260 photo: an exact similarity."""
    a = np.deg2rad(degrees)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (align.ARCFACE_TEMPLATE.astype(np.float64) @ rot.T + shift).astype(np.float32)


FACES = {"alice/1.png": photo_landmarks(12, 1.4, [45, 40]),  # relative path -> landmarks
         "bob/2.jpg": photo_landmarks(-25, 1.1, [60, 100])}


def make_folder(root):
    src = root / "photos"
    for rel, pts in FACES.items():
        os.makedirs(src / os.path.dirname(rel), exist_ok=True)
        cv2.imwrite(str(src / rel), cv2.cvtColor(blob_image(pts), cv2.COLOR_GRAY2BGR))
    (src / "broken.jpg").write_bytes(b"not an image at all")
    return src


def tsv_row(rel, pts):
    return rel + "\t" + "\t".join(repr(float(v)) for v in pts.ravel()) + "\n"  # exact


def write_tsv(path, extra=""):
    path.write_text("".join(tsv_row(rel, pts) for rel, pts in FACES.items()) + extra)
    return path


def run_main(argv):
    return align_main([str(a) for a in argv])


def test_tsv_folder_aligns_every_face_and_exits_0(tmp_path, capsys):
    src = make_folder(tmp_path)
    out = tmp_path / "aligned"
    assert run_main([src, out, "--landmarks", write_tsv(tmp_path / "lm.tsv"), "--quiet"]) == 0
    assert "aligned 2 faces (112x112)" in capsys.readouterr().out
    for rel, pts in FACES.items():
        face = cv2.imread(str(out / rel))
        assert face.shape == (112, 112, 3)
        np.testing.assert_allclose(blob_centres(face, align.ARCFACE_TEMPLATE),
                                   align.ARCFACE_TEMPLATE, atol=1.0)
    photo = cv2.imread(str(src / "alice/1.png"))
    np.testing.assert_array_equal(cv2.imread(str(out / "alice/1.png")),
                                  align.align_face(photo, FACES["alice/1.png"]))


def test_skipped_rows_and_images_are_named_and_counted(tmp_path, capsys):
    src = make_folder(tmp_path)
    good = "\t".join(["1"] * 10)
    extra = ("gone.jpg\t" + "\t".join(f"{v}" for v in FACES["bob/2.jpg"].ravel()) + "\n"
             + tsv_row("broken.jpg", FACES["bob/2.jpg"])
             + "short.jpg\t1\t2\t3\n"
             + "words.jpg\t" + good.replace("1", "x", 1) + "\n"
             + "same.jpg\t" + "\t".join(["40"] * 10) + "\n"
             + tsv_row("../outside.jpg", FACES["bob/2.jpg"])
             + tsv_row("bob/2.jpg", FACES["bob/2.jpg"]))
    lm = write_tsv(tmp_path / "lm.tsv", extra)
    assert run_main([src, tmp_path / "out", "--landmarks", lm, "--quiet"]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert f"skipped: {src / 'gone.jpg'}: no such file" in err
    assert f"skipped: {src / 'broken.jpg'}: does not decode" in err
    assert "lm.tsv line 5: 4 fields, expected 11" in err
    assert "lm.tsv line 6: could not convert string to float: 'x'" in err
    assert "lm.tsv line 7: same.jpg: landmarks all at one point" in err
    assert "lm.tsv line 8: ../outside.jpg is not a path inside SRC" in err
    assert "lm.tsv line 9: bob/2.jpg repeats an earlier row" in err
    assert ("aligned 2 faces (112x112) into " in captured.out and "skipped 7 (4 bad row, "
            "1 degenerate landmarks, 1 missing file, 1 unreadable image)" in captured.out)
    assert sorted(os.listdir(tmp_path / "out")) == ["alice", "bob"]


def test_face2rec_lst_with_landmarks(tmp_path, capsys):
    src = make_folder(tmp_path)
    lines = []
    for label, (rel, pts) in enumerate(FACES.items()):
        # aligned flag, path, label, bbox, then the 5 x and the 5 y (face_preprocess layout)
        fields = ["0", rel, str(label), "70", "90", "170", "200"] + \
                 [repr(float(v)) for v in pts[:, 0]] + [repr(float(v)) for v in pts[:, 1]]
        lines.append("\t".join(fields))
    lines += ["1\talice/1.png\t0", "0\tbob/2.jpg\t1\t70\t90\t170\t200"]
    lst = tmp_path / "train.lst"
    lst.write_text("\n".join(lines) + "\n")
    tsv_out, lst_out = tmp_path / "from_tsv", tmp_path / "from_lst"
    assert run_main([src, tsv_out, "--landmarks", write_tsv(tmp_path / "lm.tsv"), "--quiet",
                     "--size", "128"]) == 0
    assert run_main([src, lst_out, "--landmarks", lst, "--quiet", "--size", "128"]) == 1
    err = capsys.readouterr().err
    assert "train.lst line 3: aligned flag is '1'" in err
    assert "train.lst line 4: row has no landmarks" in err
    for rel in FACES:
        from_lst = cv2.imread(str(lst_out / rel))
        assert from_lst.shape == (128, 128, 3)
        np.testing.assert_array_equal(from_lst, cv2.imread(str(tsv_out / rel)))


def test_bad_input_exits_2(tmp_path, capsys):
    src = make_folder(tmp_path)
    assert run_main([tmp_path / "none", tmp_path / "o", "--landmarks", tmp_path / "x.tsv"]) == 2
    assert run_main([src, tmp_path / "o", "--landmarks", tmp_path / "none.tsv"]) == 2
    assert run_main([src, src, "--landmarks", write_tsv(tmp_path / "lm.tsv")]) == 2
    err = capsys.readouterr().err
    assert "source folder not found" in err and "landmark file not found" in err
    assert "DST is SRC" in err


def test_tool_with_worker_processes_end_to_end(tmp_path):
    src = make_folder(tmp_path)
    lm = write_tsv(tmp_path / "lm.tsv", tsv_row("gone.png", FACES["bob/2.jpg"]))
    out = tmp_path / "aligned"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "align.py"), str(src),
                           str(out), "--landmarks", str(lm), "--workers", "2", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "skipped 1 (1 missing file)" in proc.stdout
    for rel in FACES:
        face = cv2.imread(str(out / rel))
        np.testing.assert_allclose(blob_centres(face, align.ARCFACE_TEMPLATE),
                                   align.ARCFACE_TEMPLATE, atol=1.0)
