"""The speed levers change no result beyond rounding: batched, channels-last and
OpenVINO embeddings equal the plain PyTorch ones; the coarse-first detection still finds
small faces."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from facecmp.backends import ComputeOptions, OpenVinoModel
pytestmark = pytest.mark.slow  # not in the quick tier (make test-quick)




def test_faces_of_several_images_embed_as_one_by_one_in_accurate_mode(fast_comparer, celebrity_photos):
    """represent_batch's faces embed as represent's, bit for bit (one pass shape:
    embed.FACES_PER_PASS); accurate's two embedders here, fast's in test_pipeline."""
    photos = [p for person in sorted(celebrity_photos) for p in celebrity_photos[person][:2]][:6]
    together = fast_comparer.represent_batch(photos, mode="accurate")
    for photo, batched in zip(photos, together):
        np.testing.assert_array_equal(batched.embedding, fast_comparer.represent(photo, mode="accurate").embedding)


def test_embeddings_do_not_depend_on_threads_or_streams(face_crops, fast_comparer):
    """The service (a stream per inference worker, one thread each) and the Ray and process
    workers (one thread) embed a face as the library's default does, bit for bit."""
    from dataclasses import replace

    from facecmp.embed import Embedder

    default = Embedder("msceleb-128", compute=fast_comparer.compute).embed(face_crops)
    service = Embedder("msceleb-128", compute=replace(fast_comparer.compute, threads=1, streams=4))
    np.testing.assert_array_equal(service.embed(face_crops), default)


def test_channels_last_equals_plain_layout(celebrity_photos):
    from facecmp.embed import Embedder

    crops = np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3), dtype=np.uint8)
    torch_f32 = ComputeOptions.reference()
    fast = Embedder("msceleb-128", channels_last=True, compute=torch_f32)
    plain = Embedder("msceleb-128", channels_last=False, compute=torch_f32)
    assert fast.channels_last and not plain.channels_last
    assert np.abs(fast.embed(crops) - plain.embed(crops)).max() < 1e-5


@pytest.fixture(scope="module")
def face_crops(detector, celebrity_photos):
    """(6, 160, 160, 3) real aligned faces of three people, cut as fast's embedder wants them."""
    from facecmp.align import crop_face
    from facecmp.decode import load_image
    from facecmp.modes import MODES

    images = [load_image(p) for person in sorted(celebrity_photos)[:3] for p in celebrity_photos[person][:2]]
    return np.stack([crop_face(image, detector.detect(image)[0], MODES["fast"].embedders[0].crop) for image in images])


@pytest.mark.parametrize("weights", ["msceleb-128", "casia-webface"])
def test_openvino_float32_equals_pytorch(face_crops, weights):
    from facecmp.embed import Embedder

    reference = Embedder(weights, compute=ComputeOptions.reference()).embed(face_crops, flip=True)
    compiled = Embedder(weights, compute=ComputeOptions("openvino", "f32"))
    assert compiled.model is None  # the compiled copy replaces the torch module
    assert np.abs(compiled.embed(face_crops, flip=True) - reference).max() < 1e-5


def test_openvino_bfloat16_stays_within_a_thousandth_of_float32(face_crops, fast_comparer):
    from facecmp.embed import Embedder

    if ComputeOptions("openvino").resolved().precision != "bf16":
        pytest.skip("this CPU has no native bfloat16 (AMX / AVX512-BF16)")
    reference = Embedder("msceleb-128", compute=ComputeOptions.reference()).embed(face_crops)
    bf16 = Embedder("msceleb-128", compute=ComputeOptions("openvino", "bf16")).embed(face_crops)
    agreement = np.sum(reference * bf16, axis=1)
    assert np.all(agreement > 1 - 1e-3) and np.all(agreement < 1 - 1e-7)  # close, and really bf16
    # Calibrated scores of every pair move by less than 0.02: a fifth of a decade of FMR.
    scores = {name: fast_comparer.score_embeddings(e, e) for name, e in (("f32", reference), ("bf16", bf16))}
    assert np.abs(scores["bf16"] - scores["f32"]).max() < 0.02


def test_openvino_model_is_cached_as_ir_and_reloaded(tmp_path):
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    batch = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    options = dict(cache_key="tiny", input_shape=(-1, 3, 16, 16), precision="f32", threads=1, cache_root=tmp_path)
    first = OpenVinoModel(lambda: module, **options)
    [model_dir] = (tmp_path / "openvino").iterdir()
    xml = model_dir / "model.xml"
    written = xml.stat().st_mtime_ns
    with torch.no_grad():
        expected = module(torch.from_numpy(batch)).numpy()
    second = OpenVinoModel(lambda: module, **options)
    assert xml.stat().st_mtime_ns == written  # read back, not converted again
    assert np.abs(first(batch)[0] - expected).max() < 1e-5 and np.abs(second(batch)[0] - expected).max() < 1e-5
    assert [p.name for p in (tmp_path / "openvino").iterdir()] == [model_dir.name]  # no staging left


def test_openvino_streams_give_each_concurrent_caller_its_own_results(tmp_path):
    """The service's workers call one compiled model at once, each on its own stream."""
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    model = OpenVinoModel(lambda: module, cache_key="tiny", input_shape=(-1, 3, 16, 16), precision="f32", threads=1, streams=2,
                          cache_root=tmp_path)
    batches = np.random.default_rng(2).normal(size=(4, 2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = [module(torch.from_numpy(batch)).numpy() for batch in batches]
    errors: dict[int, float] = {}

    def call(index: int) -> None:
        errors[index] = max(np.abs(model(batches[index])[0] - expected[index]).max() for _ in range(20))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(errors) == [0, 1, 2, 3] and max(errors.values()) < 1e-5
    with pytest.raises(ValueError, match="streams"):
        ComputeOptions(streams=0)


def test_an_unwritable_ir_cache_only_warns(tmp_path):
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="could not cache"):
        model = OpenVinoModel(lambda: module, cache_key="tiny", input_shape=(-1, 3, 8, 8), precision="f32", threads=1,
                              cache_root=not_a_directory)
    batch = np.ones((1, 3, 8, 8), np.float32)
    with torch.no_grad():
        assert np.abs(model(batch)[0] - module(torch.from_numpy(batch)).numpy()).max() < 1e-5


def test_small_faces_are_found_at_the_finer_detection_size(celebrity_photos, detector):
    from PIL import Image

    from facecmp.decode import load_image
    from facecmp.detect import FaceDetector

    photo = load_image(celebrity_photos["ben_afflek"][0])
    face = detector.detect(photo)[0]
    width = face.box[2] - face.box[0]
    scale = 30 / width  # a 30 px face in a 1280x960 photo: 7.5 px at 320 (MTCNN finds ~12 px up), 15 px at 640
    small = np.asarray(Image.fromarray(photo).resize((round(photo.shape[1] * scale), round(photo.shape[0] * scale))))
    canvas = np.full((960, 1280, 3), 127, np.uint8)
    canvas[400:400 + small.shape[0], 600:600 + small.shape[1]] = small
    assert FaceDetector(passes=[(320, 40)]).detect(canvas) == []
    found = detector.detect(canvas)
    assert len(found) == 1
    x1, y1, x2, y2 = found[0].box
    assert 600 <= x1 and x2 <= 600 + small.shape[1] and 400 <= y1 and y2 <= 400 + small.shape[0]
    assert 20 < x2 - x1 < 45


def test_photos_no_larger_than_the_coarse_pass_are_searched_once_at_full_size(lfw_dir, detector):
    """LFW's 250 px photos (what the calibrations were fitted on) skip the coarse pass: the
    default detector finds exactly what one full-size search from 20 px finds."""
    from facecmp.decode import load_image
    from facecmp.detect import FaceDetector

    photos = [load_image(path) for path in sorted((lfw_dir / "images" / "Aaron_Peirsol").glob("*.jpg"))[:2]]
    assert all(max(photo.shape[:2]) <= 320 for photo in photos)
    full_size = FaceDetector(passes=[(640, 20)])
    for photo in photos:
        assert [f.box for f in detector.detect(photo)] == [f.box for f in full_size.detect(photo)]


def test_worker_processes_embed_a_dataset_as_this_process_does(fast_comparer, celebrity_photos, tmp_path):
    """eval's local backend in worker processes (one thread each: what a large dataset gets) gives
    this process's records bit for bit, in the input's order, failures included."""
    from eval.embeddings import EmbeddingCache, embed_images

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    photos = [p for person in sorted(celebrity_photos) for p in celebrity_photos[person][:3]]
    photos.insert(5, broken)
    runs = {workers: embed_images(photos, fast_comparer, mode="fast", cache=EmbeddingCache(":memory:"), batch_size=4,
                                  workers=workers, progress=False) for workers in (1, 2)}
    assert runs[2].complete and runs[2].n_computed == len(photos) and runs[2].failures() == {"ImageDecodeError": 1}
    np.testing.assert_array_equal(runs[2].embeddings, runs[1].embeddings)
    assert [r.meta_json() for r in runs[2].records] == [r.meta_json() for r in runs[1].records]


def test_running_workers_serve_several_sets_as_this_process_does(fast_comparer, celebrity_photos):
    """One EmbeddingWorkers pool, started once, embeds two sets in turn: each as this process
    does; a pool of another pipeline is refused."""
    from eval.embeddings import EmbeddingCache, EmbeddingWorkers, embed_images

    photos = [p for person in sorted(celebrity_photos) for p in celebrity_photos[person][:2]]
    halves = photos[:5], photos[5:]
    with EmbeddingWorkers(fast_comparer, "fast", 2) as workers:
        for half in halves:
            pooled, here = (embed_images(half, fast_comparer, mode="fast", cache=EmbeddingCache(":memory:"),
                                         batch_size=2, workers=count, progress=False) for count in (workers, 1))
            np.testing.assert_array_equal(pooled.embeddings, here.embeddings)
            assert [r.meta_json() for r in pooled.records] == [r.meta_json() for r in here.records]
        with pytest.raises(ValueError, match="these workers embed for fast-"):
            embed_images(photos, fast_comparer, mode="accurate", cache=EmbeddingCache(":memory:"), workers=workers,
                         progress=False)
