"""skdanet.model: weight averaging, label-free pseudo-labels, the network file format."""

import os

import numpy as np
import pytest
import torch
from sklearn.cluster import DBSCAN

from skdanet import DANetEmbedder, TrainedNetwork
from skdanet.model._averaging import ExponentialWeightAverage

from .conftest import clustered_unit_rows


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))


def _set_weights(module, rng):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.as_tensor(rng.normal(size=tuple(p.shape))))
        module.count += 1
    return {k: v.clone().double().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("half_life", [1.0, 2.5, 40.0])
def test_average_is_the_decay_weighted_mean_of_the_states_seen(half_life):
    rng = np.random.default_rng(0)
    module = _Tiny().double()
    average = ExponentialWeightAverage(module, half_life=half_life)
    seen = []
    for _ in range(7):
        seen.append(_set_weights(module, rng))
        average.update()
    decay = 0.5 ** (1 / half_life)
    w = decay ** np.arange(len(seen))[::-1]  # the newest state weighs 1
    got = average.state_dict()
    for name in ("linear.weight", "linear.bias"):
        expected = sum(wt * s[name] for wt, s in zip(w, seen)) / w.sum()
        np.testing.assert_allclose(got[name].numpy(), expected, rtol=1e-12, atol=1e-14)
    assert got["count"].item() == 7  # counters are copied, not averaged


def test_half_life_halves_a_states_share():
    module = _Tiny().double()
    average = ExponentialWeightAverage(module, half_life=3)
    with torch.no_grad():
        module.linear.weight.fill_(1.0)
    average.update()
    with torch.no_grad():
        module.linear.weight.fill_(0.0)
    for _ in range(3):
        average.update()
    # After 3 more steps the first state's weight is half the newest's:
    # share = 0.5 / (0.5 + 2^(-2/3) + 2^(-1/3) + 1).
    share = 0.5 / (0.5 + 2 ** (-2 / 3) + 2 ** (-1 / 3) + 1)
    np.testing.assert_allclose(average.state_dict()["linear.weight"].numpy(), share)


def test_applied_swaps_in_the_average_and_restores_the_module():
    rng = np.random.default_rng(1)
    module = _Tiny().double()
    average = ExponentialWeightAverage(module, half_life=2)
    for _ in range(3):
        _set_weights(module, rng)
        average.update()
    own = {k: v.clone() for k, v in module.state_dict().items()}
    averaged = average.state_dict()
    with average.applied():
        torch.testing.assert_close(module.linear.weight, averaged["linear.weight"])
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, own[k], rtol=0, atol=0)


def test_no_update_yet_gives_the_modules_own_state():
    module = _Tiny().double()
    state = ExponentialWeightAverage(module, half_life=2).state_dict()
    for k, v in module.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)


def _pair_loss_by_pairs(z, labels, scale, margin, known, same):
    """The loss written pair by pair and face by face: the reference."""
    sim = (z @ z.T).tolist()
    n = len(sim)
    sp = lambda x: float(np.logaddexp(0.0, x))  # noqa: E731 (softplus)
    pos, neg = [], []
    for i in range(n):
        for j in range(i + 1, n):
            if known[i][j]:
                logit = scale * (sim[i][j] - margin)
                (pos if same[i][j] else neg).append(sp(-logit) if same[i][j] else sp(logit))
    terms = [np.mean(t) for t in (pos, neg) if t]
    loss = np.mean(terms) if terms else 0.0
    hardest_neg, nearest_pos = [], []
    for i in range(n):
        negs = [sim[i][j] for j in range(n) if j != i and known[i][j] and not same[i][j]]
        poss = [sim[i][j] for j in range(n) if j != i and known[i][j] and same[i][j]]
        if negs:
            soft_max = np.logaddexp.reduce(scale * np.array(negs)) / scale
            hardest_neg.append(sp(scale * (soft_max - margin)))
        if poss:
            nearest_pos.append(sp(scale * (margin - max(poss))))
    return loss + sum(np.mean(t) for t in (hardest_neg, nearest_pos) if t)


@pytest.mark.parametrize("case", ["labels", "known", "known_and_same", "one_label", "none_known"])
def test_pair_loss_matches_the_pair_by_pair_definition(case):
    from skdanet.model._loss import pair_loss

    rng = np.random.default_rng(3)
    n = 24
    z = rng.standard_normal((n, 6))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    labels = rng.integers(0, 1 if case == "one_label" else 5, n)
    known = rng.random((n, n)) > 0.3
    known = known & known.T
    if case == "none_known":
        known[:] = False
    same = (labels[:, None] == labels[None, :]) | (rng.random((n, n)) > 0.95)
    same = same | same.T
    kwargs = {}
    if case in ("known", "known_and_same", "none_known"):
        kwargs["known"] = torch.as_tensor(known)
    else:  # every pair but a face with itself
        known = ~np.eye(n, dtype=bool)
    if case in ("known_and_same", "none_known"):
        kwargs["same"] = torch.as_tensor(same)
    else:  # the pairs of one label
        same = labels[:, None] == labels[None, :]
    zt = torch.as_tensor(z, dtype=torch.float64, device="cpu").requires_grad_()
    loss = pair_loss(zt, torch.as_tensor(labels), scale=30.0, margin=0.7, **kwargs)
    expected = _pair_loss_by_pairs(z, labels, 30.0, 0.7, known, same)
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    loss.backward()
    assert torch.isfinite(zt.grad).all()
    if case == "none_known":
        assert (zt.grad == 0).all()
    else:  # the gradient training follows is the loss's own
        assert torch.autograd.gradcheck(
            lambda v: pair_loss(v, torch.as_tensor(labels), scale=30.0, margin=0.7, **kwargs),
            (zt.detach().clone().requires_grad_(),))


def test_chain_attention_equals_attention_over_every_position():
    # The module folds the key and value maps out of the chain positions; the
    # reference computes keys and values position by position.
    from skdanet.model._modules import ChainAttention

    torch.manual_seed(0)
    att = ChainAttention(8, 5).double()
    with torch.no_grad():
        for p in att.parameters():
            p.normal_()
    phi = torch.randn(6, 4, 8, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0],
                         [1, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    q = att.query(phi[:, 0])
    expected = []
    for c in range(len(phi)):
        positions = torch.nonzero(mask[c])[:, 0]
        keys, values = att.key(phi[c, positions]), att.value(phi[c, positions])
        weights = torch.softmax(keys @ q[c] / np.sqrt(8), dim=0)
        context = weights @ values
        expected.append(att.out(torch.cat([phi[c, 0], context])))
    torch.testing.assert_close(att(phi, mask), torch.stack(expected), rtol=1e-12, atol=1e-12)


def test_load_never_unpickles(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.npz"
    np.savez(path, header=np.array([Boom()], dtype=object))
    with pytest.raises(ValueError, match="unpickling"):
        TrainedNetwork.load(path)
    assert not (tmp_path / "pwned").exists()


def test_load_rejects_truncated_and_foreign_files(trained, tmp_path):
    emb, _, _ = trained
    path = tmp_path / "net.npz"
    emb.network_.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        TrainedNetwork.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a (readable|valid) skdanet network"):
        TrainedNetwork.load(tmp_path / "other.npz")


def test_label_free_anchors_are_purer_than_the_chain_trees():
    # Real data: the unseen half of LFW (split seed 0), as a label-free user has it.
    from skdanet.datasets import load_lfw_features, split_identities
    from skdanet.graph import build_density_graph, chain_roots, l2_normalize
    from skdanet.metrics import pairwise_precision_recall_fscore
    from skdanet.model._trainer import anchor_parents

    X, y = load_lfw_features(return_X_y=True)
    _, test = split_identities(y, test_size=0.5, random_state=0)
    graph = build_density_graph(l2_normalize(X[test]), 30)
    anchors = chain_roots(anchor_parents(graph))
    trees = chain_roots(graph.parent)
    anchor_p, anchor_r, _ = pairwise_precision_recall_fscore(y[test], anchors)
    tree_p, _, _ = pairwise_precision_recall_fscore(y[test], trees)
    assert anchor_p > 0.99
    assert tree_p < 0.9
    assert anchor_r > 0.5  # still links most same-person pairs


def test_anchors_keep_every_confident_step_where_people_have_second_photos():
    # The unseen halves of LFW and the generated faces: the split finds the
    # same-person mode, and the anchors are the confident steps, all of them.
    from skdanet.datasets import load_lfw_features, make_face_like, split_identities
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import anchor_parents, confident_steps

    X, y = load_lfw_features(return_X_y=True)
    _, test = split_identities(y, test_size=0.5, random_state=1)
    for faces in (X[test], make_face_like(3000, random_state=0)[0]):
        graph = build_density_graph(l2_normalize(faces), 30)
        confident = confident_steps(graph)
        np.testing.assert_array_equal(anchor_parents(graph),
                                      np.where(confident, graph.parent, -1))


def test_anchors_do_not_chain_strangers_together():
    # Real strangers: LFW faces of people with one photo. Their similarities
    # show no same-person mode, so most confident steps join strangers; the
    # anchors keep only the few that stand out, and no tree grows.
    from skdanet.datasets import load_lfw_features
    from skdanet.graph import build_density_graph, chain_roots, l2_normalize
    from skdanet.model._trainer import anchor_parents, confident_steps

    X, y = load_lfw_features(return_X_y=True)
    strangers = np.flatnonzero(np.bincount(y)[y] == 1)
    graph = build_density_graph(l2_normalize(X[strangers]), 30)
    confident = confident_steps(graph)
    assert confident.mean() > 0.5
    assert np.bincount(chain_roots(np.where(confident, graph.parent, -1))).max() > 100
    anchors = anchor_parents(graph)
    assert (anchors >= 0).sum() < 0.05 * confident.sum()
    assert np.bincount(chain_roots(anchors)).max() <= 3


def test_anchors_keep_the_steps_of_a_few_people_with_many_photos():
    # LFW's five most photographed people (1,140 faces): every face's 30
    # searched neighbours are its own person, so few steps stand out from
    # them, as among strangers; but strangers lie far beyond the search, and
    # the anchors keep every confident step.
    from skdanet.datasets import load_lfw_features
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import (
        anchor_parents,
        confident_steps,
        searched_neighbours_are_one_person,
    )

    X, y = load_lfw_features(return_X_y=True)
    rows = np.isin(y, np.argsort(-np.bincount(y), kind="stable")[:5])
    graph = build_density_graph(l2_normalize(X[rows]), 30)
    confident = confident_steps(graph)
    assert (confident & graph.stands_out(graph.parent_sim)).sum() < 0.15 * confident.sum()
    assert searched_neighbours_are_one_person(graph)
    np.testing.assert_array_equal(anchor_parents(graph), np.where(confident, graph.parent, -1))


def _arcface_like(n_people, photos, same_person_cos=0.6, n_features=512, seed=0):
    # Far lower same-person similarities than dlib's (0.6 against 0.95) and
    # strangers near cos 0: another extractor's scale.
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, n_features))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_people), photos)
    spread = np.sqrt((1 / same_person_cos - 1) / n_features)
    return centres[y] + rng.normal(scale=spread, size=(len(y), n_features)), y


def _brute_force_distances(X, n_search=30):
    # From the full similarity matrix: each face's distance (1 - cos) to its
    # nearest and farthest searched neighbour, a far stranger's distance (the
    # lower quartile of every pair) and the gap of a crowd of strangers of
    # this size (normal order statistics).
    from scipy.stats import norm

    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = X @ X.T
    pairs = S[np.triu_indices(len(X), k=1)]
    np.fill_diagonal(S, -np.inf)
    ranked = -np.sort(-S, axis=1)
    n = len(X)
    crowd_gap = ((norm.isf(n_search / n) - norm.ppf(0.25))
                 / (norm.isf(1 / n) - norm.isf(n_search / n)))
    return 1 - ranked[:, 0], 1 - ranked[:, n_search - 1], 1 - np.percentile(pairs, 25), crowd_gap


def _brute_force_stranger_gaps(X, n_search=30):
    nearest, farthest, stranger, crowd_gap = _brute_force_distances(X, n_search)
    return (stranger - farthest) / (farthest - nearest) / crowd_gap


def _brute_force_one_person(X, n_search=30):
    # The rule on a typical face: the median nearest and farthest distances.
    from skdanet.model._trainer import _MIN_STRANGER_GAP

    nearest, farthest, stranger, crowd_gap = _brute_force_distances(X, n_search)
    nearest, farthest = np.median(nearest), np.median(farthest)
    return (stranger - farthest) / (farthest - nearest) / crowd_gap > _MIN_STRANGER_GAP


@pytest.mark.parametrize("faces, one_person", [
    ("lfw strangers", False), ("lfw most photographed", True),
    ("arcface strangers", False), ("arcface few people", True)])
def test_searched_neighbours_are_one_person_on_either_extractors_scale(faces, one_person):
    from skdanet.datasets import load_lfw_features
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import searched_neighbours_are_one_person

    X, y = load_lfw_features(return_X_y=True)
    if faces == "lfw strangers":
        X = X[np.bincount(y)[y] == 1][:150]
    elif faces == "lfw most photographed":
        X = X[np.isin(y, np.argsort(-np.bincount(y), kind="stable")[:2])][::4]
    elif faces == "arcface strangers":
        X = _arcface_like(200, 1)[0]
    else:
        X = _arcface_like(4, 50)[0]
    # Small sets, so that stranger_sim uses every pair, as the brute force does.
    graph = build_density_graph(l2_normalize(X), 30)
    assert searched_neighbours_are_one_person(graph) == one_person
    assert _brute_force_one_person(X) == one_person


def test_stranger_gap_of_a_crowd_does_not_grow_with_its_size():
    # Among more strangers the searched neighbours draw closer together, so
    # the raw gap grows with the set; relative to the crowd's order
    # statistics it stays near 1, well below a few people's.
    from skdanet.datasets import make_face_like
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import _MIN_STRANGER_GAP

    gaps = [build_density_graph(l2_normalize(make_face_like(
        n, n_identities=n, random_state=0)[0]), 30).stranger_gap() for n in (1000, 10_000)]
    assert max(gaps) < 0.8 * _MIN_STRANGER_GAP
    assert abs(gaps[1] - gaps[0]) < 0.25 * gaps[0]


def test_stranger_gap_of_a_set_too_small_for_a_crowd():
    # Four faces and three searched neighbours leave a crowd of strangers no
    # spread to compare with: the gaps are infinite, and come without an
    # error or a warning.
    import warnings

    from skdanet.graph import build_density_graph

    graph = build_density_graph(np.ones((4, 1)), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert graph.stranger_gap() == np.inf
        np.testing.assert_array_equal(graph.stranger_gaps(), np.full(4, np.inf))


def test_label_free_clustering_of_a_few_people_on_another_extractors_scale():
    # Five people with 200 ArcFace-like photos each: nothing stands out from
    # a face's 30 neighbours here either, and without the gap test the
    # anchors kept no step (every face its own cluster); pushed apart below
    # the Otsu split, each person broke into pieces.
    from skdanet import DensityChainClustering
    from skdanet.metrics import bcubed_f_score

    X, y = _arcface_like(5, 200)
    labels = DensityChainClustering(random_state=0).fit_predict(X)
    assert len(np.unique(labels)) <= 10
    assert bcubed_f_score(y, labels) > 0.98


@pytest.mark.parametrize("people", [2, 5])
def test_label_free_clustering_of_a_few_people_with_many_photos(people):
    # LFW's most photographed people. Taken for strangers (no confident step
    # standing out), they lost their anchors and broke into hundreds of
    # clusters (BCubed F 0.24 for five people); pushed apart below the Otsu
    # split, each broke into a large piece and dozens of strays (0.93).
    from skdanet import DensityChainClustering
    from skdanet.datasets import load_lfw_features
    from skdanet.metrics import bcubed_f_score

    X, y = load_lfw_features(return_X_y=True)
    rows = np.isin(y, np.argsort(-np.bincount(y), kind="stable")[:people])
    labels = DensityChainClustering(random_state=0).fit_predict(X[rows])
    assert len(np.unique(labels)) <= 2 * people
    assert bcubed_f_score(y[rows], labels) > 0.98


def _a_few_people_among_strangers():
    # LFW's two most photographed people (a quarter of their photos) and 150
    # people with one photo: the faces of either kind in one set.
    from skdanet.datasets import load_lfw_features

    X, y = load_lfw_features(return_X_y=True)
    few = np.flatnonzero(np.isin(y, np.argsort(-np.bincount(y), kind="stable")[:2]))[::4]
    strangers = np.flatnonzero(np.bincount(y)[y] == 1)[:150]
    return X[np.r_[few, strangers]], np.r_[np.ones(len(few), bool), np.zeros(150, bool)]


def test_stranger_gaps_match_the_brute_force_face_by_face():
    from skdanet.graph import build_density_graph, l2_normalize

    X, _ = _a_few_people_among_strangers()
    # Small enough that stranger_sim uses every pair, as the brute force does.
    graph = build_density_graph(l2_normalize(X), 30)
    # The graph's similarities are float32, and the gap divides differences
    # of similarities near 1.
    np.testing.assert_allclose(graph.stranger_gaps(), _brute_force_stranger_gaps(X), rtol=1e-3)


def test_faces_among_their_own_person_are_those_of_people_with_many_photos():
    # A face of one of the few people has its own person's photos for
    # searched neighbours, and a far stranger far beyond them; a one-photo
    # face has strangers for neighbours, and nothing far beyond them.
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import _MIN_STRANGER_GAP, faces_among_their_own_person

    X, many_photos = _a_few_people_among_strangers()
    graph = build_density_graph(l2_normalize(X), 30)
    alone = graph.stranger_gaps() > _MIN_STRANGER_GAP
    assert alone[many_photos].mean() > 0.95
    assert alone[~many_photos].mean() < 0.1
    # The neighbours' majority takes in the few people's outlying photos too
    # (a face left out is pushed apart from its own person's photos).
    own = faces_among_their_own_person(graph)
    assert np.all(own >= alone)
    assert own[many_photos].all()


def test_label_free_clustering_of_a_few_big_people_among_many_small_ones():
    # 150 generated people whose photo counts run from 676 down to one: the
    # set passes the gap test on its few big people, and a split halfway to a
    # far stranger for every face left the small people's near strangers
    # unpushed and pulled them together (BCubed F 0.71); pushed apart below
    # the Otsu split, the big people broke into pieces (0.96).
    from skdanet import DensityChainClustering
    from skdanet.datasets import make_face_like
    from skdanet.metrics import bcubed_f_score

    X, y = make_face_like(4000, n_identities=150, random_state=0)[:2]
    labels = DensityChainClustering(random_state=0).fit_predict(X)
    assert bcubed_f_score(y, labels) > 0.98


def test_label_free_clustering_of_a_few_people_among_one_photo_people():
    # A family's library with its acquaintances: LFW's five most
    # photographed people among 300 people with one photo. The few people's
    # photos stay whole, and the one-photo people apart from them.
    from skdanet import DensityChainClustering
    from skdanet.datasets import load_lfw_features
    from skdanet.metrics import bcubed_f_score

    X, y = load_lfw_features(return_X_y=True)
    counts = np.bincount(y)
    few = np.flatnonzero(np.isin(y, np.argsort(-counts, kind="stable")[:5]))
    one = np.random.default_rng(0).choice(np.flatnonzero(counts[y] == 1), 300, replace=False)
    X, y = X[np.r_[few, one]], y[np.r_[few, one]]
    labels = DensityChainClustering(random_state=0).fit_predict(X)
    many = np.arange(len(y)) < len(few)
    for person in np.unique(y[many]):
        assert np.bincount(labels[y == person]).max() >= 0.99 * np.sum(y == person)
    joined = np.isin(labels[~many], labels[many])
    assert joined.mean() < 0.1
    assert bcubed_f_score(y, labels) > 0.96


def test_label_free_clustering_of_a_few_generated_people():
    # Ten generated people with about 200 photos each (BCubed F 0.55 on
    # 4,000 faces when pushed apart below the Otsu split).
    from skdanet import DensityChainClustering
    from skdanet.datasets import make_face_like
    from skdanet.metrics import bcubed_f_score

    X, y = make_face_like(2000, n_identities=10, random_state=0)[:2]
    labels = DensityChainClustering(random_state=0).fit_predict(X)
    assert bcubed_f_score(y, labels) > 0.98


def _pairs_below(X, y, split):
    # Shares of same-person and of different-person pairs whose similarity
    # lies below the higher of their two faces' splits, over every pair.
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    split = np.broadcast_to(split, len(X))
    first, second = np.triu_indices(len(X), k=1)
    below = (np.einsum("ij,ij->i", X[first], X[second])
             < np.maximum(split[first], split[second]))
    same = y[first] == y[second]
    return below[same].mean(), below[~same].mean()


@pytest.mark.parametrize("faces", ["lfw", "arcface_like"])
def test_stranger_split_lies_between_a_few_peoples_photos_and_strangers(faces):
    # A few people with many photos each: the Otsu split of the kNN
    # similarities falls inside a person's photos, and most of a person's
    # pairs lie below it; the stranger split keeps nearly all of them above
    # it and nearly all strangers below.
    from skdanet.datasets import load_lfw_features
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import stranger_split

    if faces == "lfw":
        X, y = load_lfw_features(return_X_y=True)
        rows = np.isin(y, np.argsort(-np.bincount(y), kind="stable")[:5])
        X, y = X[rows], y[rows]
    else:
        X, y = _arcface_like(5, 200)
    graph = build_density_graph(l2_normalize(X), 30)
    same_below, strangers_below = _pairs_below(X, y, graph.similarity_split)
    assert same_below > 0.5
    same_below, strangers_below = _pairs_below(X, y, stranger_split(graph))
    assert same_below < 0.01
    assert strangers_below > 0.9


def test_stranger_split_is_the_otsu_split_where_people_have_second_photos():
    from skdanet.datasets import load_lfw_features, split_identities
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import stranger_split

    X, y = load_lfw_features(return_X_y=True)
    _, test = split_identities(y, test_size=0.5, random_state=0)
    graph = build_density_graph(l2_normalize(X[test]), 30)
    np.testing.assert_array_equal(stranger_split(graph),
                                  np.full(len(X[test]), graph.similarity_split))


@pytest.mark.parametrize("strangers", ["lfw", "generated"])
def test_label_free_clustering_of_strangers_makes_no_giant_cluster(strangers):
    # Sets where hardly anybody has a second photo: 2,000 LFW people with one
    # photo; 2,000 generated faces of 1,800 people. Trained on trees of
    # strangers, label-free training pulled them into one cluster of nearly
    # every face (BCubed F below 0.15); with the near strangers above the
    # Otsu split left out of the push, into clusters of 40-70 faces (0.96).
    from skdanet import DensityChainClustering
    from skdanet.datasets import load_lfw_features, make_face_like
    from skdanet.metrics import bcubed_f_score

    if strangers == "lfw":
        X, y = load_lfw_features(return_X_y=True)
        one = np.flatnonzero(np.bincount(y)[y] == 1)[::2]
        X, y = X[one], y[one]
    else:
        X, y = make_face_like(2000, n_identities=1800, random_state=0)[:2]
    labels = DensityChainClustering(random_state=0).fit_predict(X)
    assert np.bincount(labels[labels >= 0]).max() < 0.01 * len(X)
    assert bcubed_f_score(y, labels) > 0.97


def test_standing_out_sim_is_where_a_similarity_starts_to_stand_out(small_faces):
    from skdanet.graph import build_density_graph, l2_normalize

    graph = build_density_graph(l2_normalize(small_faces[0]), 10)
    threshold = graph.standing_out_sim()
    assert np.all(graph.stands_out(threshold + 1e-6))
    assert not np.any(graph.stands_out(threshold - 1e-6))


def test_strangers_are_pushed_apart_unless_they_stand_out():
    # LFW people with one photo: the Otsu split of the kNN similarities falls
    # among strangers, and a third or more of the searched strangers lie above
    # it; the push split keeps nearly all of them below, and it never falls
    # below the Otsu split.
    from skdanet.datasets import load_lfw_features
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.model._trainer import hardly_anybody_has_a_second_photo, stranger_split

    X, y = load_lfw_features(return_X_y=True)
    one = np.flatnonzero(np.bincount(y)[y] == 1)[::2]
    graph = build_density_graph(l2_normalize(X[one]), 30)
    assert hardly_anybody_has_a_second_photo(graph)
    split = stranger_split(graph)
    assert np.all(split >= graph.similarity_split)
    sims, faces = graph.knn_sims[:, 1:], graph.neighbors
    pair_split = np.maximum(split[:, None], split[faces])
    assert np.mean(sims >= graph.similarity_split) > 0.3
    assert np.mean(sims < pair_split) > 0.99


def test_label_free_pseudo_labels_read_the_extractors_scale_not_a_given_tau(lfw_people):
    # A clique threshold a user gives (tau=0.9, below dlib's same-person
    # similarities) sizes cliques only: the confident chain steps and the pairs
    # left out of the loss follow the data's own Otsu split, as with "auto".
    # Read from tau, label-free training chained different people together and
    # collapsed them (LFW: pairwise precision near 0).
    from skdanet import DensityChainClustering
    from skdanet.datasets import load_lfw_features, split_identities
    from skdanet.graph import build_density_graph, l2_normalize
    from skdanet.metrics import clustering_report
    from skdanet.model._trainer import anchor_parents

    X, y = load_lfw_features(return_X_y=True)
    _, test = split_identities(y, test_size=0.5, random_state=0)
    Xn = l2_normalize(X[test])
    auto = build_density_graph(Xn, 30)
    given = build_density_graph(Xn, 30, tau=0.9, stop_threshold=auto.stop_threshold)
    assert auto.tau == auto.similarity_split == given.similarity_split > 0.9
    assert given.tau == 0.9
    np.testing.assert_array_equal(anchor_parents(given), anchor_parents(auto))

    X, y = lfw_people
    scores = {tau: clustering_report(y, DensityChainClustering(tau=tau, random_state=0)
                                     .fit(X).labels_)
              for tau in ("auto", 0.9)}
    # Read from tau, these faces lose 0.03 of pairwise precision and 0.01 of F.
    assert scores["auto"]["pairwise_f"] > 0.98
    assert scores[0.9]["pairwise_p"] > 0.98
    assert abs(scores[0.9]["pairwise_f"] - scores["auto"]["pairwise_f"]) < 0.005


def test_the_similarity_split_does_not_shrink_with_k():
    # A face's 10 nearest are mostly its own person's, so their Otsu split
    # would rise towards same-person similarities (0.946 here against 0.941),
    # and label-free training would push people's own photos apart. The split
    # reads each face's 30 nearest for any smaller k; the graph keeps k.
    from skdanet.datasets import load_lfw_features, split_identities
    from skdanet.graph import build_density_graph, knn_graph, l2_normalize
    from skdanet.graph._clique import otsu_threshold

    X, y = load_lfw_features(return_X_y=True)
    _, test = split_identities(y, test_size=0.5, random_state=0)
    Xn = l2_normalize(X[test])
    sims30, _ = knn_graph(Xn, 30)
    sims10, idx10 = knn_graph(Xn, 10)
    small, large = build_density_graph(Xn, 10), build_density_graph(Xn, 30)
    assert small.similarity_split == large.similarity_split == otsu_threshold(sims30[:, 1:])
    assert otsu_threshold(sims10[:, 1:]) > small.similarity_split + 0.003
    # The same 10 nearest (up to the order of equally similar faces).
    np.testing.assert_allclose(small.knn_sims, sims10, atol=1e-6)
    rows, cols = np.nonzero(small.knn_indices != idx10)
    assert len(rows) < 10
    a, b = Xn[small.knn_indices[rows, cols]], Xn[idx10[rows, cols]]
    np.testing.assert_allclose(np.sum(Xn[rows] * a, 1), np.sum(Xn[rows] * b, 1), atol=1e-6)
    assert small.n_neighbors == 10
    emb = DANetEmbedder(k=10, network=TrainedNetwork.pretrained("dlib128")).fit(X[test][:300])
    assert emb.graph_.n_neighbors == 10
    assert emb.tau_ == build_density_graph(l2_normalize(X[test][:300]), 30).tau


def test_label_free_pair_relation_follows_the_two_clustering_radii():
    # Brute-force reference for which pairs label-free training pulls together
    # (same pseudo-label, or pseudo-label clusters whose unit-norm means lie
    # within the link radius), pushes apart (raw similarity below the higher
    # of the two faces' splits, and the means further apart than the merge
    # radius), or leaves out (all other pairs).
    from types import SimpleNamespace

    from skdanet.cluster import ClusteringRule, link_radius
    from skdanet.model._trainer import _Trainer

    rng = np.random.default_rng(0)
    F = rng.normal(size=(40, 4))
    F /= np.linalg.norm(F, axis=1, keepdims=True)
    Z = rng.normal(size=(40, 3))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    labels = np.unique(rng.integers(0, 12, size=40), return_inverse=True)[1]
    margin = 0.7
    splits = rng.uniform(0.0, 0.4, size=40)
    trainer = SimpleNamespace(reference=F.astype(np.float32), device=torch.device("cpu"),
                              graph=SimpleNamespace(tau=0.9),
                              est=SimpleNamespace(pair_margin=margin), rule=ClusteringRule())
    means = np.array([Z[labels == c].mean(0) for c in range(labels.max() + 1)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    merge_eps = np.sqrt(2 - 2 * margin)
    nodes = rng.permutation(40)[:30]
    seen = set()
    for embedded in (False, True):
        # In the features' precision, as label-free training hands it over.
        relation = _Trainer._pseudo_pair_relation(trainer, labels, splits.astype(np.float32),
                                                  Z if embedded else None)
        same, known = (t.numpy() for t in relation(nodes))
        for i, a in enumerate(nodes):
            for j, b in enumerate(nodes):
                apart = np.linalg.norm(means[labels[a]] - means[labels[b]])
                one = labels[a] == labels[b]
                pulled = one or (embedded and apart <= link_radius(merge_eps))
                pushed = (not pulled and float(F[a] @ F[b]) < max(splits[a], splits[b])
                          and (not embedded or apart > merge_eps))
                assert same[i, j] == pulled, (a, b, embedded)
                assert known[i, j] == (pulled or pushed), (a, b, embedded)
                if embedded and not one:
                    seen.add("pulled" if pulled else "pushed" if pushed else "left out")
    assert seen == {"pulled", "pushed", "left out"}  # every case occurs


def test_label_free_pseudo_labels_cluster_the_expanded_embedding():
    # Reference: expand row by row over the raw kNN graph, calibrate the
    # radius against the anchors on the expanded rows, DBSCAN there.
    from types import MethodType, SimpleNamespace

    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import NearestNeighbors

    from skdanet.cluster import DEFAULT_QUERY_EXPANSION, ClusteringRule, calibrate_eps
    from skdanet.cluster._dbscan import number_by_first_point
    from skdanet.model._trainer import _Trainer, relabelling_rule

    from .conftest import expanded_by_loop

    Z, truth = clustered_unit_rows(400, 8, 20, 0.35, seed=3)
    F, _ = clustered_unit_rows(400, 8, 20, 0.35, seed=4)
    knn = NearestNeighbors(n_neighbors=11).fit(F).kneighbors(F, return_distance=False)
    anchors = np.where(np.arange(400) % 3 == 0, truth, np.arange(400) + 100)
    trainer = SimpleNamespace(graph=SimpleNamespace(knn_indices=knn, neighbors=knn[:, 1:]),
                              rng=np.random.default_rng(0),
                              rule=relabelling_rule(ClusteringRule()))
    trainer._at_most_validation_faces = MethodType(_Trainer._at_most_validation_faces, trainer)
    labels, eps, _ = _Trainer._refined_pseudo_labels(trainer, Z.copy(), anchors)
    expanded = expanded_by_loop(Z, knn[:, 1:], DEFAULT_QUERY_EXPANSION)
    expected_eps, _ = calibrate_eps(expanded, anchors)
    assert eps == expected_eps
    # Re-labelling links only kNN pairs (O(n k)): components of the kNN pairs
    # within the radius, by brute force.
    rows = np.repeat(np.arange(400), 10)
    cols = knn[:, 1:].ravel()
    near = np.linalg.norm(expanded[rows] - expanded[cols], axis=1) <= expected_eps
    links = csr_matrix((np.ones(near.sum()), (rows[near], cols[near])), shape=(400, 400))
    expected = number_by_first_point(connected_components(links, directed=False)[1])
    np.testing.assert_array_equal(labels, expected)
    assert len(np.unique(labels)) < len(np.unique(DBSCAN(eps=eps, min_samples=1).fit_predict(Z)))


def test_network_config_records_where_its_radius_comes_from(trained, tmp_path):
    import json

    emb, X, _ = trained
    assert emb.network_.config["eps_source"] == "calibrated"
    # A file written before the key existed reads as the loss's boundary.
    config = {k: v for k, v in emb.network_.config.items() if k != "eps_source"}
    old = TrainedNetwork(config, emb.network_.state)
    assert old.config["eps_source"] == "loss"
    path = tmp_path / "net.npz"
    emb.network_.save(path)
    assert TrainedNetwork.load(path).config == emb.network_.config
    with pytest.raises(ValueError, match="eps_source"):
        TrainedNetwork({**config, "eps_source": "guessed"}, emb.network_.state)
    assert json.dumps(emb.network_.config)  # the header stays plain JSON


@pytest.mark.parametrize("eps", [0.0, -0.3])
def test_network_with_a_non_positive_radius_is_refused(trained, eps):
    emb, _, _ = trained
    with pytest.raises(ValueError, match="positive radius"):
        TrainedNetwork({**emb.network_.config, "eps": eps}, emb.network_.state)


def test_pretrained_network_loads_by_name_and_clusters_real_faces(lfw_people):
    # The shipped dlib network clusters LFW people with no labels and no
    # training, better than DBSCAN on the raw features at its best radius.
    from sklearn.cluster import DBSCAN

    from skdanet import DensityChainClustering
    from skdanet.cluster import RAW_EPS_GRID, best_threshold
    from skdanet.graph import l2_normalize
    from skdanet.metrics import mean_f_score

    assert "dlib128" in TrainedNetwork.pretrained_names()
    net = TrainedNetwork.pretrained("dlib128")
    assert net.in_features == 128 and net.config["eps_source"] == "calibrated"
    X, y = lfw_people
    labels = DensityChainClustering(network=net).fit(X).labels_
    Xn = l2_normalize(X.astype(np.float64))
    _, best_raw = best_threshold(lambda e: DBSCAN(eps=e, min_samples=1).fit_predict(Xn),
                                 RAW_EPS_GRID, y)
    assert mean_f_score(y, labels) > best_raw
    with pytest.raises(ValueError, match="dlib128"):
        TrainedNetwork.pretrained("arcface512")


def _write_network_file(path, header, arrays):
    import json

    text = header if isinstance(header, str) else json.dumps(header)
    with open(path, "wb") as f:
        np.savez(f, header=np.array(text), **{f"w/{k}": v for k, v in arrays.items()})


def test_untrusted_network_files_are_refused_before_allocating(trained, tmp_path):
    # Each file declares something it may not; load must say so with a
    # ValueError naming the file, without building what it declares.
    import tracemalloc

    emb, _, _ = trained
    net = emb.network_
    header = {"format": "skdanet-network", "version": 1, "config": net.config}
    cases = {
        "huge_hidden": ({**header, "config": {**net.config, "hidden_size": 10**7}}, net.state),
        "big_hidden": ({**header, "config": {**net.config, "hidden_size": 8000}}, net.state),
        "big_endian": (header, {k: v.astype(">f4") for k, v in net.state.items()}),
        "longdouble": (header, {k: v.astype(np.longdouble) for k, v in net.state.items()}),
        "wrong_shape": (header, {**net.state, "chain.out.bias": np.zeros(3, np.float32)}),
        "nested_json": ('{"format": "skdanet-network", "version": 1, "config": '
                        + "[" * 100_000 + "]" * 100_000 + "}", net.state),
        "bool_eps": ({**header, "config": {**net.config, "eps": True}}, net.state),
    }
    for name, (head, state) in cases.items():
        path = tmp_path / f"{name}.npz"
        _write_network_file(path, head, state)
        tracemalloc.start()
        with pytest.raises(ValueError, match=name + ".npz"):
            TrainedNetwork.load(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 50 * 2**20, (name, peak)
    text = tmp_path / "notes.npz"
    text.write_text("hello, not a network")
    with pytest.raises(ValueError, match="not a complete zip archive"):
        TrainedNetwork.load(text)


def test_a_large_declared_array_in_a_small_file_is_refused(trained, tmp_path):
    # A member whose header declares far more data than the file stores.
    import zipfile

    emb, _, _ = trained
    path = tmp_path / "liar.npz"
    emb.network_.save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    key = next(n for n in members if n.endswith("chain.out.weight.npy"))
    members[key] = members[key][: len(members[key]) // 2]
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="bytes where its header declares"):
        TrainedNetwork.load(path)


def test_a_network_refuses_features_of_another_extractor(lfw_people):
    # The shipped dlib network on rotated features (another "extractor": same
    # statistics, another basis) would collapse them into one cluster; it must
    # refuse them, in the embedder and in the clusterer, and accept dlib faces.
    import warnings

    from skdanet import DensityChainClustering
    from skdanet.datasets import make_face_like

    net = TrainedNetwork.pretrained("dlib128")
    assert len(net.config["feature_direction"]) == 128
    X_other, _ = make_face_like(300, random_state=0)
    with pytest.raises(ValueError, match="another extractor.*fit without network="):
        DANetEmbedder(network=net).fit(X_other)
    model = DensityChainClustering(network=net)
    with pytest.raises(ValueError, match="another extractor"):
        model.fit(X_other)
    assert not hasattr(model, "labels_")
    X, _ = lfw_people
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = DANetEmbedder(network=net).fit_transform(X[:40])  # dlib faces: accepted
    assert np.all(np.isfinite(Z))


@pytest.mark.parametrize("dtype", [">f4", np.longdouble, np.float16, np.int32])
def test_weights_given_directly_must_be_little_endian_float32_or_64(trained, dtype):
    emb, _, _ = trained
    state = {k: v.astype(dtype) for k, v in emb.network_.state.items()}
    with pytest.raises(ValueError, match="little-endian float32"):
        TrainedNetwork(emb.network_.config, state)


def test_readers_never_see_a_partly_written_file_while_it_is_saved_again(trained, tmp_path):
    import threading

    emb, _, _ = trained
    path = tmp_path / "net.npz"
    emb.network_.save(path)
    stop, failures, loads = threading.Event(), [], [0]

    def read():
        while not stop.is_set():
            try:
                TrainedNetwork.load(path)
                loads[0] += 1
            except ValueError as exc:  # a partial file would be refused
                failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(40):
        emb.network_.save(path)
    stop.set()
    reader.join()
    assert failures == [] and loads[0] > 0


def test_an_epoch_is_at_most_max_batches_of_fresh_neighbourhoods():
    from skdanet.model._sampling import neighbourhood_batches

    knn = np.stack([np.roll(np.arange(5000), -j) for j in range(8)], axis=1)
    rng = np.random.default_rng(0)
    seen = np.zeros(5000, dtype=bool)
    for _ in range(6):
        batches = list(neighbourhood_batches(np.arange(5000), knn, rng, batch_size=64,
                                             per_seed=7, max_batches=5))
        assert len(batches) == 5
        assert all(len(b) <= 64 for b in batches)
        seen[np.concatenate(batches)] = True
    # Each epoch samples anew: six epochs of 320 faces cover far more than one.
    assert 1500 < seen.sum() < 1921
    # Below the cap, the epoch is the whole pass, the same batches as without one.
    a = list(neighbourhood_batches(np.arange(300), knn, np.random.default_rng(1),
                                   batch_size=64, per_seed=7))
    b = list(neighbourhood_batches(np.arange(300), knn, np.random.default_rng(1),
                                   batch_size=64, per_seed=7, max_batches=1000))
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_the_step_budget_bounds_label_free_training_without_changing_small_sets():
    from skdanet.datasets import make_face_like

    X, _ = make_face_like(1200, random_state=0)
    params = dict(k=10, n_epochs=3, n_rounds=1, batch_size=64, random_state=0)
    # 1200 faces in batches of 64: about 19 steps an epoch, all below a cap of 100.
    full = DANetEmbedder(max_epoch_steps=None, **params).fit(X)
    capped = DANetEmbedder(max_epoch_steps=100, **params).fit(X)
    np.testing.assert_array_equal(full.transform(X[:50]), capped.transform(X[:50]))
    few = DANetEmbedder(max_epoch_steps=2, **params).fit(X)
    assert not np.array_equal(few.transform(X[:50]), full.transform(X[:50]))


def test_held_out_score_is_what_the_clusterer_gives_those_people(trained, lfw_people):
    # HeldOutPeople scores a network as a user would see it: the unseen
    # people's own graph, the whole rule, at the radius calibrated on them.
    from skdanet import DensityChainClustering
    from skdanet.cluster import ClusteringRule, calibrate_eps
    from skdanet.graph import DensityGraph, l2_normalize
    from skdanet.metrics import mean_f_score
    from skdanet.model._trainer import HeldOutPeople

    emb, _, _ = trained
    X, y = lfw_people
    faces = l2_normalize(X[:200])
    codes = np.unique(y[:200], return_inverse=True)[1]
    graph = DensityGraph.build(faces, 10)
    held_out = HeldOutPeople(faces, codes, graph, ClusteringRule(), torch.device("cpu"))
    eps, score = held_out.score(emb.network_.build_module())

    Z = DANetEmbedder(k=10, network=emb.network_)._fit_embed(X[:200], None, ClusteringRule())
    assert eps == calibrate_eps(Z, codes)[0]
    network = TrainedNetwork({**emb.network_.config, "eps": eps}, emb.network_.state)
    labels = DensityChainClustering(k=10, network=network).fit(X[:200]).labels_
    assert score == pytest.approx(mean_f_score(codes, labels), abs=1e-12)


def test_supervised_training_that_hurts_held_out_people_keeps_the_raw_features(capsys):
    # A learning rate far too large wrecks the embedding in two epochs; the
    # whole rule on the held-out people then prefers the untrained start,
    # whose residual correction is zero: the network is the identity map.
    from skdanet.cluster import ClusteringRule
    from skdanet.graph import DensityGraph, l2_normalize
    from skdanet.model import TrainingParams, train_network

    X, y = clustered_unit_rows(400, 16, 20, 0.35, seed=3)
    emb = DANetEmbedder(k=10, n_epochs=2, learning_rate=0.5, random_state=0, verbose=1)
    emb.fit(X, y)
    assert "keeping the untrained start" in capsys.readouterr().out
    assert all(not np.any(v) for k, v in emb.network_.state.items() if k.startswith("chain.out"))
    np.testing.assert_allclose(emb._reference_embedding, l2_normalize(X), atol=1e-6)

    # Without the held-out comparison, the same training keeps its wrecked weights.
    reference = l2_normalize(X)
    network, _ = train_network(
        reference, DensityGraph.build(reference, 10), y,
        params=TrainingParams(n_epochs=2, learning_rate=0.5), rule=ClusteringRule(), seed=0,
        device=torch.device("cpu"))
    assert np.any(network.state["chain.out.weight"])
    assert network.config["eps"] != emb.network_.config["eps"]


def test_a_saved_network_file_gets_the_permissions_open_gives(trained, tmp_path):
    # Saving goes through a temporary file renamed over the target; the file
    # must still be readable as a plainly written one is (a shared model
    # folder, a container run as another user), and overwriting keeps the mode.
    import stat

    emb, _, _ = trained
    path = tmp_path / "net.npz"
    emb.network_.save(path)
    with open(tmp_path / "plain", "wb"):
        pass
    assert (stat.S_IMODE(os.stat(path).st_mode)
            == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode))
    os.chmod(path, 0o640)
    emb.network_.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz", "plain"]
    assert TrainedNetwork.load(path).config == emb.network_.config
