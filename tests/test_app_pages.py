"""Every dashboard page driven through Streamlit's AppTest, with the shipped model.

AppTest (streamlit.testing.v1) supports ``st.file_uploader`` directly in this Streamlit
version: ``at.file_uploader(key=...).set_value((name, bytes, mime))`` registers the
bytes in the test's in-memory upload manager, so uploads go through the same widget
code as in a browser.

AppTest forgets, before every run, that the app uses ``st.navigation`` and, seeing a
``pages/`` folder, runs the page through Streamlit's folder mode, as a fresh server does for
a page opened by its own address: each page's ``routing.through_app()`` routes it back
through the app, so these tests run that path too.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.model import DEFAULT_MODEL_PATH, load_metadata, metadata_path
from helpers import REPO, real_xray_bytes
from ui.examples import example_images
from ui.wording import CLEAR_TEXT, FLAG_TEXT

pytestmark = pytest.mark.skipif(not metadata_path(DEFAULT_MODEL_PATH).is_file(),
                                reason=f"the model {DEFAULT_MODEL_PATH} and its metadata are not present")

APP = str(REPO / "streamlit_app.py")
TIMEOUT = 180  # the first run of the session loads TensorFlow and the model
PAGES = {
    "pages/single_triage.py": "Single X-ray triage",
    "pages/batch_worklist.py": "Batch worklist",
    "pages/threshold_explorer.py": "Threshold explorer",
    "pages/activation_maps.py": "Activation maps",
    "pages/model_card.py": "Model card",
    "pages/comparison.py": "Approaches compared",
    "pages/site_calibration.py": "Site calibration",
    "pages/monitoring.py": "Monitoring",
}



def jpeg(height: int = 420, width: int = 360, seed: int = 0) -> bytes:
    return real_xray_bytes(seed, height, width, "JPEG")


def png(height: int = 300, width: int = 300, seed: int = 1) -> bytes:
    return real_xray_bytes(seed, height, width, "PNG")


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def probability(text: str) -> float:
    """The number behind a displayed probability ("0.412", "> 0.999", "< 0.001")."""
    return float(text.lstrip("<> "))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def confusion_text(at: AppTest) -> list[list[str]]:
    chart = next(c for c in at.get("plotly_chart") if "heatmap" in c.proto.spec)
    return json.loads(chart.proto.spec)["data"][0]["text"]


def banner(at: AppTest) -> str:
    texts = [e.value for e in at.main.error] + [s.value for s in at.main.success]
    return next(t for t in texts if FLAG_TEXT in t or CLEAR_TEXT in t)


def sidebar_threshold(at: AppTest) -> float:
    text = next(m.value for m in at.sidebar.markdown if "Threshold in force" in m.value)
    return float(text.split()[-1])


@pytest.mark.parametrize(("page", "title"), list(PAGES.items()))
def test_every_page_runs(page: str, title: str) -> None:
    at = start(page)
    assert at.title[0].value == title


def test_sidebar_names_model_threshold_and_notice() -> None:
    at = start()
    info = load_metadata(DEFAULT_MODEL_PATH)
    text = " ".join(m.value for m in at.sidebar.markdown) + " ".join(c.value for c in at.sidebar.caption)
    assert info.name in text and info.version in text
    assert sidebar_threshold(at) == pytest.approx(round(info.threshold.value, 3))
    notice = " ".join(i.value for i in at.sidebar.info)
    assert "never replaces a clinician" in notice


def test_single_page_shows_probability_decision_and_heatmap() -> None:
    at = start()
    # The upload box tells users that phone photos are cropped from colour originals only.
    assert "colour original" in at.file_uploader(key="single_upload").proto.help
    at.file_uploader(key="single_upload").set_value(("child.jpeg", jpeg(), "image/jpeg")).run()
    assert_clean(at)
    values = metrics(at)
    p = probability(values["Probability of pneumonia"])
    threshold = float(values["Threshold in force"])
    assert 0.0 <= p <= 1.0
    assert values["Time for this result"].endswith(" s")
    expected = FLAG_TEXT if p >= threshold else CLEAR_TEXT
    assert expected in banner(at)
    images = at.get("image")
    assert len(images) == 2
    assert "not the location of a lesion" in images[1].captions[0]

    # Other methods and the other target recompute the map without re-scoring.
    at.selectbox(key="single_method").set_value("Grad-CAM++")
    at.radio(key="single_target").set_value("normal")
    at.slider(key="single_opacity").set_value(0.8).run()
    assert_clean(at)
    assert "Grad-CAM++" in at.get("image")[1].captions[0]
    assert metrics(at)["Probability of pneumonia"] == values["Probability of pneumonia"]


def test_single_page_tells_how_to_retake_a_photo_it_could_not_crop() -> None:
    from PIL import Image

    from core.capture import PHOTO_HINT
    from helpers import encode
    from helpers.field import radiograph, tinted

    # A warm-cast picture with no film outline, which the shipped gate refuses.
    warm = encode(Image.fromarray(tinted(radiograph(seed=0), (1.0, 0.9, 0.7))), "PNG")
    at = start()
    at.file_uploader(key="single_upload").set_value(("photo.png", warm, "image/png")).run()
    assert_clean(at)
    assert any("cannot be analysed" in e.value for e in at.error)
    assert any(PHOTO_HINT in i.value for i in at.info)


def test_single_page_reports_a_bad_file_without_traceback() -> None:
    at = start()
    at.file_uploader(key="single_upload").set_value(("scan.jpeg", b"\xff\xd8 this is not a JPEG", "image/jpeg")).run()
    assert_clean(at)
    assert any("cannot be analysed" in e.value for e in at.error)
    assert not at.get("image")


def test_threshold_moves_confusion_counts_and_the_triage_decision() -> None:
    example = next(p for name, p in example_images().items() if name.startswith("Normal"))
    at = start()
    at.file_uploader(key="single_upload").set_value(("example.jpeg", example.read_bytes(), "image/jpeg")).run()
    assert probability(metrics(at)["Probability of pneumonia"]) < 0.999

    at.switch_page("pages/threshold_explorer.py").run()
    assert_clean(at)
    shipped = confusion_text(at)

    at.slider(key="explorer_slider").set_value(0.0).run()
    assert_clean(at)
    everyone = confusion_text(at)
    assert everyone != shipped
    assert "<b>0</b> missed" in everyone[0][1] and "<b>0</b> correctly not flagged" in everyone[1][1]
    assert metrics(at)["Images referred"] == "100.0%"
    assert sidebar_threshold(at) == 0.0

    # The triage page uses the session threshold: everything is flagged at 0.
    at.switch_page("pages/single_triage.py").run()
    assert_clean(at)
    assert FLAG_TEXT in banner(at)

    at.switch_page("pages/threshold_explorer.py").run()
    at.slider(key="explorer_slider").set_value(1.0).run()
    assert confusion_text(at) != everyone
    at.switch_page("pages/single_triage.py").run()
    assert CLEAR_TEXT in banner(at)
    assert metrics(at)["Threshold in force"] == "1.000"


def test_presets_and_reset_set_the_session_threshold() -> None:
    at = start("pages/threshold_explorer.py")
    shipped = load_metadata(DEFAULT_MODEL_PATH).threshold.value
    recall99 = next(b for b in at.button if b.label.startswith("Recall ≥ 99% ("))
    recall99.click().run()
    assert_clean(at)
    moved = sidebar_threshold(at)
    assert at.slider(key="explorer_slider").value == pytest.approx(moved, abs=5e-4)
    recall = float(metrics(at)["Recall (sensitivity)"].rstrip("%"))
    assert recall >= 99.0
    # Move well away from the shipped value whatever the preset gave, then reset.
    away = 0.9 if shipped < 0.5 else 0.1
    at.slider(key="explorer_slider").set_value(away).run()
    assert sidebar_threshold(at) == pytest.approx(away)
    at.button(key="sidebar_reset").click().run()
    assert sidebar_threshold(at) == pytest.approx(round(shipped, 3))
    assert at.slider(key="explorer_slider").value == pytest.approx(shipped)


def test_explorer_shows_ppv_and_npv_at_a_chosen_prevalence() -> None:
    at = start("pages/threshold_explorer.py")
    split = at.number_input(key="explorer_prevalence").value
    values = metrics(at)
    # The default is the split's own prevalence (rounded to 0.1%), where PPV is the split's precision.
    ppv_here = float(values[f"PPV at {split / 100:.1%} prevalence"].rstrip("%"))
    assert ppv_here == pytest.approx(float(values["Precision (PPV)"].rstrip("%")), abs=0.2)
    at.number_input(key="explorer_prevalence").set_value(5.0).run()
    assert_clean(at)
    values = metrics(at)
    assert float(values["PPV at 5.0% prevalence"].rstrip("%")) < float(values["Precision (PPV)"].rstrip("%"))
    assert float(values["NPV at 5.0% prevalence"].rstrip("%")) >= float(values["NPV"].rstrip("%"))


def test_batch_scores_good_files_and_lists_the_broken_one() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("clinic/b.png", png())
        zf.writestr("clinic/readme.txt", "not an image")
    at = start("pages/batch_worklist.py")
    at.file_uploader(key="batch_upload").set_value([
        ("a.jpeg", jpeg(seed=2), "image/jpeg"),
        ("broken.jpeg", b"garbage bytes", "image/jpeg"),
        ("day.zip", archive.getvalue(), "application/zip"),
    ]).run()
    assert_clean(at)
    counts = metrics(at)
    assert counts["Files"] == "4"
    assert counts["Could not be scored"] == "2"
    assert int(counts["Flagged for review"]) + int(counts["Not flagged"]) == 2
    failed = at.dataframe[0].value  # the failed-files table comes first
    assert set(failed["file"]) == {"broken.jpeg", "day.zip/clinic/readme.txt"}
    table = at.dataframe(key="batch_table").value
    assert len(table) == 4
    scored = table.dropna(subset=["probability"])
    assert list(scored["probability"]) == sorted(scored["probability"], reverse=True)
    assert all(table["thumbnail"].str.startswith("data:image/png;base64,"))

    # The highest-ranked case is shown with its heatmap; a failed one with its reason.
    assert len(at.get("image")) == 2
    at.selectbox(key="batch_case").set_value(4).run()
    assert_clean(at)
    assert any("Not scored" in w.value for w in at.warning)


def test_activation_maps_for_example_and_other_layers() -> None:
    at = start("pages/activation_maps.py")
    images = at.get("image")
    assert len(images) == 2
    assert "most active" in images[0].captions[0]
    members = at.selectbox(key="maps_member").options
    assert members
    if len(members) > 1:  # an ensemble: every member can be inspected on its own
        at.selectbox(key="maps_member").set_value(members[-1]).run()
        assert_clean(at)
        assert members[-1] in at.get("image")[1].captions[0]
    layers = at.selectbox(key="maps_layer").options
    assert "last_conv" in layers
    at.selectbox(key="maps_layer").set_value(layers[0]).run()
    assert_clean(at)
    assert layers[0] in at.get("image")[0].captions[0]
    at.radio(key="maps_source").set_value("Upload an image").run()
    at.file_uploader(key="maps_upload").set_value(("bad.png", b"nope", "image/png")).run()
    assert_clean(at)
    assert any("cannot be analysed" in e.value for e in at.error)


def test_model_card_sections() -> None:
    at = start("pages/model_card.py")
    headings = [h.value for h in at.subheader]
    for section in ("Intended use", "Out of scope", "Data", "Training", "Performance on our test split",
                    "Images the tool refuses to assess", "Approaches compared", "Limitations"):
        assert section in headings
    gate_rows = " ".join(str(t.value) for t in at.table)
    assert "Real X-rays refused" in gate_rows and "Non-X-ray images accepted" in gate_rows
    text = " ".join(m.value for m in at.markdown)
    assert "CC BY 4.0" in text and "one centre" in text
    assert len(at.table) >= 3
    # The figures shipped beside the model: the augmentation ablation and the comparison of approaches.
    assert "Which augmentation helps?" in text
    tables = [frame.value for frame in at.dataframe]
    assert any("recipe" in t.columns and "shifted AUC (mean)" in t.columns for t in tables)
    assert any("approach" in t.columns and "ROC AUC" in t.columns for t in tables)
    # The shipped threshold comes with its rule and how it moves under shift.
    captions = " ".join(c.value for c in at.caption)
    assert "Operating threshold" in captions and "recall stays within" in captions
    # Which films carry the test AUC's shortfall, read from the test predictions beside the model.
    assert "Where the AUC falls short of 1" in captions and "highest-scored of the" in captions


def test_uploads_survive_a_visit_to_another_page() -> None:
    at = start()
    at.file_uploader(key="single_upload").set_value(("child.jpeg", jpeg(seed=5), "image/jpeg")).run()
    first = metrics(at)["Probability of pneumonia"]
    at.switch_page("pages/model_card.py").run()
    at.switch_page("pages/single_triage.py").run()
    assert_clean(at)
    assert metrics(at)["Probability of pneumonia"] == first
    assert np.isfinite(probability(first))


def test_config_keeps_the_app_offline_and_accepts_large_uploads() -> None:
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    # A manual address stops a headless server looking up its public IP on the internet.
    assert config["browser"]["serverAddress"]
    assert config["server"]["maxUploadSize"] >= 200
    assert config["client"]["showErrorDetails"] == "none"


def test_probability_text_never_claims_certainty() -> None:
    from ui.widgets import probability_text

    assert probability_text(0.99996) == "> 0.999"
    assert probability_text(0.0001) == "< 0.001"
    assert probability_text(0.4404) == "0.440"
    assert probability(probability_text(1.0)) < 1.0


def colour_photo() -> bytes:
    rng = np.random.default_rng(5)
    buffer = io.BytesIO()
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (400, 500, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_single_page_refuses_what_is_not_a_chest_xray() -> None:
    at = start()
    at.file_uploader(key="single_upload").set_value(("holiday.png", colour_photo(), "image/png")).run()
    assert_clean(at)
    assert "Probability of pneumonia" not in metrics(at)
    messages = " ".join(e.value for e in at.error)
    assert "cannot assess" in messages and "colour" in messages


def test_activation_maps_go_through_the_gate() -> None:
    at = start("pages/activation_maps.py")
    at.radio(key="maps_source").set_value("Upload an image").run()
    at.file_uploader(key="maps_upload").set_value(("holiday.png", colour_photo(), "image/png")).run()
    assert_clean(at)
    messages = " ".join(e.value for e in at.error)
    assert "cannot assess" in messages and "colour" in messages
    assert not any("probability of pneumonia" in c.value for c in at.caption)


def test_batch_lists_a_non_xray_as_failed_never_as_normal() -> None:
    at = start("pages/batch_worklist.py")
    at.file_uploader(key="batch_upload").set_value([
        ("a.jpeg", jpeg(seed=0), "image/jpeg"),
        ("holiday.png", colour_photo(), "image/png"),
    ]).run()
    assert_clean(at)
    counts = metrics(at)
    assert counts["Files"] == "2" and counts["Could not be scored"] == "1"
    failed = at.dataframe[0].value
    assert list(failed["file"]) == ["holiday.png"]
    assert failed.iloc[0].astype(str).str.contains("cannot assess").any()


# --- site calibration -------------------------------------------------------------------------


def labelled_zip() -> bytes:
    """A small labelled set from the two committed examples: resized and re-encoded variants in class folders."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for label, seed in (("NORMAL", 0), ("PNEUMONIA", 1)):  # the examples sort normal_… before pneumonia_…
            for i, (height, width) in enumerate([(420, 360), (380, 340), (500, 430), (450, 450)]):
                for fmt in ("JPEG", "PNG"):
                    zf.writestr(f"clinic/{label}/{i}.{fmt.lower()}", real_xray_bytes(seed, height, width, fmt))
        zf.writestr("clinic/notes.txt", "not a case")
    return archive.getvalue()


def saved_profile(sha256: str, site: str = "Test Clinic", threshold: float = 0.123) -> bytes:
    from core.calibration import build_profile

    profile, _ = build_profile(site, sha256, np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9]),
                               rule="manual", value=threshold, n_boot=0)
    return profile.to_json().encode("utf-8")


def sidebar_text(at: AppTest) -> str:
    return " ".join([m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]
                    + [w.value for w in at.sidebar.warning])


def test_site_page_calibrates_an_upload_and_puts_it_in_force() -> None:
    shipped = load_metadata(DEFAULT_MODEL_PATH).threshold.value
    at = start()
    # A result from before the profile is rescored at the profile's operating point.
    at.file_uploader(key="single_upload").set_value(("child.jpeg", jpeg(seed=0), "image/jpeg")).run()
    at.switch_page("pages/site_calibration.py").run()
    at.file_uploader(key="site_upload").set_value(("Kisumu.zip", labelled_zip(), "application/zip")).run()
    assert_clean(at)
    text = " ".join(m.value for m in at.main.markdown)
    assert "**8 NORMAL** and **8 PNEUMONIA** images scored" in text and "1 without a label" in text
    warnings = " ".join(w.value for w in at.warning)
    assert "only 8 NORMAL cases (fewer than 100)" in warnings and "only 8 PNEUMONIA cases" in warnings
    assert at.radio(key="site_refit").disabled  # too few cases to refit a calibration
    at.number_input(key="site_target").set_value(0.9).run()
    assert_clean(at)
    assert "highest threshold keeping local sensitivity ≥ 0.9" in " ".join(m.value for m in at.main.markdown)
    assert {"Sensitivity", "Specificity", "Referred", "PPV", "NPV"} <= set(metrics(at))
    assert any(c.value.startswith("95% bootstrap intervals (resampling images): sensitivity") for c in at.caption)
    assert len(at.get("plotly_chart")) == 4
    assert [b.proto.label for b in at.get("download_button")] == ["Download the site profile (JSON)"]

    at.button(key="site_use").click().run()
    assert_clean(at)
    assert "Site profile:** Kisumu" in sidebar_text(at)
    threshold = sidebar_threshold(at)
    at.switch_page("pages/single_triage.py").run()
    assert_clean(at)
    values = metrics(at)
    assert values["Threshold in force"] == f"{threshold:.3f}"
    p = probability(values["Probability of pneumonia"])
    assert (FLAG_TEXT if p >= threshold else CLEAR_TEXT) in banner(at)

    at.button(key="sidebar_profile_clear").click().run()
    assert_clean(at)
    assert "Site profile" not in sidebar_text(at)
    assert sidebar_threshold(at) == pytest.approx(round(shipped, 3))


def test_site_page_loads_a_saved_profile_and_refuses_one_for_another_model() -> None:
    sha = load_metadata(DEFAULT_MODEL_PATH).sha256
    at = start("pages/site_calibration.py")
    upload = at.file_uploader(key="site_profile_upload")
    upload.set_value(("old.json", saved_profile("cd" * 32), "application/json")).run()
    assert_clean(at)
    assert any("the model changed: re-calibrate" in e.value for e in at.error)
    at.file_uploader(key="site_profile_upload").set_value(("clinic.json", saved_profile(sha), "application/json")).run()
    at.button(key="site_use_loaded").click().run()
    assert_clean(at)
    assert "Test Clinic" in sidebar_text(at) and sidebar_threshold(at) == 0.123
    at.switch_page("pages/single_triage.py").run()
    at.file_uploader(key="single_upload").set_value(("child.jpeg", jpeg(seed=3), "image/jpeg")).run()
    assert_clean(at)
    assert metrics(at)["Threshold in force"] == "0.123"


def test_server_default_profile_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from ui.state import PROFILE_ENV

    sha = load_metadata(DEFAULT_MODEL_PATH).sha256
    path = tmp_path / "district.json"
    path.write_bytes(saved_profile(sha, site="District default", threshold=0.2))
    monkeypatch.setenv(PROFILE_ENV, str(path))
    at = start()
    assert "District default" in sidebar_text(at) and sidebar_threshold(at) == 0.2
    path.write_bytes(saved_profile("cd" * 32, site="District default", threshold=0.2))
    at = start()
    text = sidebar_text(at)
    assert "was not used" in text and "re-calibrate" in text
    assert sidebar_threshold(at) == pytest.approx(round(load_metadata(DEFAULT_MODEL_PATH).threshold.value, 3))


@pytest.mark.skipif(not (REPO / "models" / "pneumonia_subtype.keras").is_file(),
                    reason="no research subtype model ships in models/")
def test_activation_maps_research_view_only_for_flagged_pneumonia() -> None:
    at = start("pages/activation_maps.py")
    names = at.selectbox(key="maps_example").options
    pneumonia = next(n for n in names if n.startswith("Pneumonia"))
    normal = next(n for n in names if n.startswith("Normal"))
    at.selectbox(key="maps_example").set_value(pneumonia).run()
    assert_clean(at)
    text = " ".join(m.value for m in at.markdown)
    assert "Research only" in " ".join(w.value for w in at.warning)
    assert "score that this pneumonia is **bacterial**" in text and "reads bacterial above 0.67" in text
    assert any("bacterial score" in c for image in at.get("image") for c in image.captions)
    at.selectbox(key="maps_example").set_value(normal).run()
    assert_clean(at)
    assert "bacterial**" not in " ".join(m.value for m in at.markdown)
    assert any("Shown only for films the triage model flags" in c.value for c in at.caption)


def test_comparison_page_shows_the_table_and_notes() -> None:
    at = start("pages/comparison.py")
    assert at.title[0].value == "Approaches compared"
    frame = at.dataframe[0].value
    assert "ROC AUC" in frame.columns and len(frame) >= 3
    assert list(frame["ROC AUC"]) == sorted(frame["ROC AUC"], reverse=True)
