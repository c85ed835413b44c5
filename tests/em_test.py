"""Tests for lasem_jax.core.em: likelihoods, posterior, priors, M-step objective."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from lasem_jax.core import em
from lasem_jax.core.search_space import enumerate_configs


def _np_log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))


def _np_true_class_log_probs(logits, labels):
    logp = _np_log_softmax(logits)
    return np.take_along_axis(logp, np.broadcast_to(labels, logp.shape[:-1])[..., None], -1)[..., 0]


def _random_logits(seed, shape, scale=3.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape).astype(np.float32)


class LikelihoodTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("product", "product"), ("mean", "mean"))
    def test_matches_numpy(self, mode):
        """config_log_likelihood equals a float64 numpy computation of Eq. 2 / Appendix D."""
        logits = _random_logits(0, (6, 5, 4))
        labels = np.array([0, 3, 1, 1, 2])
        got = self.variant(lambda lg, lb: em.config_log_likelihood(lg, lb, mode=mode))(
            logits, labels
        )
        ll = _np_true_class_log_probs(logits, labels)  # [C, B]
        if mode == "product":
            expected = ll.sum(axis=-1)
        else:
            expected = np.log(np.exp(ll).mean(axis=-1))
        chex.assert_shape(got, (6,))
        chex.assert_trees_all_close(got, expected.astype(np.float32), rtol=1e-5, atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_mean_is_log_of_mean_probability(self):
        """Mean mode on a hand example: probabilities 1/2 and 1/4 give log(3/8)."""
        # Two classes: logits (0, 0) -> p = 1/2; logits (0, log 3) with label 0 -> p = 1/4.
        logits = jnp.array([[[0.0, 0.0], [0.0, np.log(3.0)]]])
        labels = jnp.array([0, 0])
        fn = self.variant(lambda lg, lb: em.config_log_likelihood(lg, lb, mode="mean"))
        chex.assert_trees_all_close(fn(logits, labels), jnp.array([np.log(3 / 8)]), rtol=1e-6)
        fn_p = self.variant(lambda lg, lb: em.config_log_likelihood(lg, lb, mode="product"))
        chex.assert_trees_all_close(fn_p(logits, labels), jnp.array([np.log(1 / 8)]), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("product", "product"), ("mean", "mean"))
    def test_extreme_logits_finite(self, mode):
        """Logits of +-1e4 (confidently wrong and right) give finite log-likelihoods."""
        c, b, k = 4, 3, 5
        logits = np.full((c, b, k), 1e4, np.float32)
        labels = np.array([0, 2, 4])
        logits[0, np.arange(b), labels] = -1e4  # config 0: confidently wrong on every sample
        logits[1] = -1e4
        logits[1, np.arange(b), labels] = 1e4  # config 1: confidently right
        got = self.variant(lambda lg, lb: em.config_log_likelihood(lg, lb, mode=mode))(
            logits, labels
        )
        chex.assert_tree_all_finite(got)
        # Config 0: each log p ~ -2e4 - log(k-1); config 1: ~0.
        per_sample = -2e4 - np.log(k - 1)
        expected0 = b * per_sample if mode == "product" else per_sample
        np.testing.assert_allclose(got[0], expected0, rtol=1e-5)
        np.testing.assert_allclose(got[1], 0.0, atol=1e-5)

    def test_unknown_mode(self):
        """An unknown likelihood mode raises ValueError naming it."""
        with pytest.raises(ValueError, match="'median'"):
            em.config_log_likelihood(jnp.zeros((2, 3, 4)), jnp.zeros(3, jnp.int32), mode="median")

    @chex.variants(with_jit=True, without_jit=True)
    def test_per_config_nll_is_mean_cross_entropy(self):
        """per_config_nll is the minibatch mean cross-entropy of every configuration."""
        logits = _random_logits(1, (3, 4, 6))
        labels = np.array([5, 0, 2, 2])
        got = self.variant(em.per_config_nll)(logits, labels)
        expected = -_np_true_class_log_probs(logits, labels).mean(axis=-1)
        chex.assert_trees_all_close(got, expected.astype(np.float32), rtol=1e-5, atol=1e-6)


class PosteriorTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("moderate", -3.0),
        ("large", -1e3),
        ("huge", -1e6),
    )
    def test_finite_and_normalised(self, low):
        """The posterior is finite, non-negative and sums to 1 for very negative log-likelihoods."""
        log_lik = jnp.linspace(low, low / 2, 16)
        log_prior = jnp.full((16,), -jnp.log(16.0))
        post = self.variant(em.posterior)(log_prior, log_lik)
        chex.assert_shape(post, (16,))
        chex.assert_tree_all_finite(post)
        assert (post >= 0).all()
        np.testing.assert_allclose(post.sum(), 1.0, rtol=1e-6)
        assert int(jnp.argmax(post)) == 15

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("product", "product"), ("mean", "mean"))
    def test_from_extreme_logits(self, mode):
        """Logits up to +-1e4 through the likelihood give a finite posterior summing to 1."""
        rng = np.random.default_rng(2)
        logits = rng.choice(np.array([-1e4, 1e4], np.float32), size=(8, 10, 5))
        labels = rng.integers(0, 5, size=10)

        def fn(lg, lb):
            ll = em.config_log_likelihood(lg, lb, mode=mode)
            return em.posterior(jnp.full((8,), -jnp.log(8.0)), ll)

        post = self.variant(fn)(logits, labels)
        chex.assert_tree_all_finite(post)
        np.testing.assert_allclose(post.sum(), 1.0, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_minus_inf_prior_entries(self):
        """Entries with log prior -inf get exactly zero mass; the rest is finite and normalised."""
        log_prior = jnp.log(jnp.array([0.0, 0.5, 0.0, 0.5]))
        log_lik = jnp.array([10.0, -1e6, 50.0, -2e6])
        post = self.variant(em.posterior)(log_prior, log_lik)
        chex.assert_tree_all_finite(post)
        np.testing.assert_array_equal(np.asarray(post)[[0, 2]], 0.0)
        np.testing.assert_allclose(post.sum(), 1.0, rtol=1e-6)
        np.testing.assert_allclose(post[1], 1.0, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_equals_bayes_rule(self):
        """On a moderate example the posterior is prior * likelihood / evidence."""
        prior = np.array([0.1, 0.2, 0.3, 0.4])
        lik = np.array([0.5, 0.05, 0.2, 0.01])
        post = self.variant(em.posterior)(jnp.log(prior), jnp.log(lik))
        expected = prior * lik / (prior * lik).sum()
        chex.assert_trees_all_close(post, expected.astype(np.float32), rtol=1e-5)


class PriorTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_laplace_init_uniform(self):
        """The Laplace prior starts uniform for any init count."""
        for init_count in (1.0, 3.5):
            prior = em.laplace_prior(init_count=init_count)
            state = prior.init(8)
            chex.assert_trees_all_close(state.stats, jnp.full((8,), init_count))
            assert int(state.count) == 0
            lp = self.variant(prior.log_prob)(state)
            chex.assert_trees_all_close(lp, jnp.full((8,), -np.log(8.0)), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_laplace_update_counts_argmax(self):
        """Each update adds one to the MAP configuration; ties go to the lowest index."""
        prior = em.laplace_prior(init_count=1.0)
        update = self.variant(prior.update)
        state = prior.init(4)
        state = update(state, jnp.array([0.1, 0.6, 0.2, 0.1]))
        chex.assert_trees_all_close(state.stats, jnp.array([1.0, 2.0, 1.0, 1.0]))
        state = update(state, jnp.array([0.1, 0.4, 0.1, 0.4]))  # tie between 1 and 3
        chex.assert_trees_all_close(state.stats, jnp.array([1.0, 3.0, 1.0, 1.0]))
        state = update(state, jnp.full((4,), 0.25))  # all tied -> index 0
        chex.assert_trees_all_close(state.stats, jnp.array([2.0, 3.0, 1.0, 1.0]))
        assert int(state.count) == 3
        lp = self.variant(prior.log_prob)(state)
        chex.assert_trees_all_close(jnp.exp(lp), jnp.array([2.0, 3.0, 1.0, 1.0]) / 7.0, rtol=1e-6)
        np.testing.assert_allclose(jax.nn.logsumexp(lp), 0.0, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_running_mean_prior(self):
        """The running-mean prior is uniform before any update, then the mean of posteriors."""
        prior = em.running_mean_prior()
        update, log_prob = self.variant(prior.update), self.variant(prior.log_prob)
        state = prior.init(5)
        chex.assert_trees_all_close(log_prob(state), jnp.full((5,), -np.log(5.0)), rtol=1e-6)
        rng = np.random.default_rng(3)
        posts = rng.dirichlet(np.ones(5), size=3).astype(np.float32)
        for n, p in enumerate(posts, start=1):
            state = update(state, jnp.asarray(p))
            assert int(state.count) == n
            lp = log_prob(state)
            chex.assert_tree_all_finite(lp)
            chex.assert_trees_all_close(jnp.exp(lp), posts[:n].mean(axis=0), rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_running_mean_zero_entries_become_minus_inf(self):
        """A configuration never given mass has log prior -inf, and the posterior copes."""
        prior = em.running_mean_prior()
        state = self.variant(prior.update)(prior.init(3), jnp.array([0.5, 0.5, 0.0]))
        lp = prior.log_prob(state)
        assert np.isneginf(lp[2])
        post = em.posterior(lp, jnp.array([-5.0, -1.0, 100.0]))
        chex.assert_tree_all_finite(post)
        np.testing.assert_allclose(post.sum(), 1.0, rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_fixed_prior(self):
        """The fixed prior returns log(probs) and ignores updates except the counter."""
        probs = em.fixed_probs(4, 2, 0.7)
        prior = em.fixed_prior(probs)
        state = prior.init(4)
        state = self.variant(prior.update)(state, jnp.array([1.0, 0.0, 0.0, 0.0]))
        assert int(state.count) == 1
        chex.assert_trees_all_close(state.stats, probs)
        lp = self.variant(prior.log_prob)(state)
        chex.assert_trees_all_close(lp, jnp.log(jnp.array([0.1, 0.1, 0.7, 0.1])), rtol=1e-5)
        with pytest.raises(ValueError, match="Fixed prior has 4 entries, need 8"):
            prior.init(8)

    def test_fixed_probs(self):
        """fixed_probs puts p at the index and spreads 1-p evenly; p outside [0,1] is rejected."""
        probs = em.fixed_probs(16, 7, 0.9)
        chex.assert_shape(probs, (16,))
        np.testing.assert_allclose(probs[7], 0.9, rtol=1e-6)
        np.testing.assert_allclose(np.delete(np.asarray(probs), 7), 0.1 / 15, rtol=1e-5)
        np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
        np.testing.assert_allclose(em.fixed_probs(1, 0, 1.0), [1.0])
        with pytest.raises(ValueError, match=r"\[0, 1\], got 1.5"):
            em.fixed_probs(4, 0, 1.5)
        with pytest.raises(ValueError, match=r"\[0, 1\], got -0.1"):
            em.fixed_probs(4, 0, -0.1)


class MStepTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_m_step_loss_gradients(self):
        """Gradient w.r.t. nll is the posterior; w.r.t. the posterior it is 0 (stop_gradient)."""
        post = jnp.array([0.1, 0.2, 0.3, 0.4])
        nll = jnp.array([1.0, 2.0, 0.5, 3.0])
        value = self.variant(em.m_step_loss)(post, nll)
        np.testing.assert_allclose(value, 0.1 + 0.4 + 0.15 + 1.2, rtol=1e-6)
        g_post, g_nll = self.variant(jax.grad(em.m_step_loss, argnums=(0, 1)))(post, nll)
        chex.assert_trees_all_close(g_nll, post)
        chex.assert_trees_all_close(g_post, jnp.zeros(4))

    @chex.variants(with_jit=True, without_jit=True)
    def test_transfer_probability(self):
        """The layer marginal is post @ configs: 1/2 each for uniform, the row for a one-hot."""
        configs = enumerate_configs(4)
        fn = self.variant(em.transfer_probability)
        chex.assert_trees_all_close(fn(jnp.full((16,), 1 / 16), configs), jnp.full((4,), 0.5))
        chex.assert_trees_all_close(
            fn(jax.nn.one_hot(7, 16), configs), jnp.array([0.0, 0.0, 0.0, 1.0])
        )
        post = jnp.zeros(16).at[0].set(0.25).at[15].set(0.75)  # TTTT and FFFF
        chex.assert_trees_all_close(fn(post, configs), jnp.full((4,), 0.25))
        post = jnp.zeros(16).at[1].set(0.6).at[2].set(0.4)  # FTTT and TFTT
        chex.assert_trees_all_close(fn(post, configs), jnp.array([0.4, 0.6, 1.0, 1.0]))


def test_fixed_probs_index_out_of_range():
    """An index outside the configurations is an error, not a silently dropped write."""
    with pytest.raises(ValueError, match=r"outside 0\.\.15"):
        em.fixed_probs(16, 16, 0.9)
