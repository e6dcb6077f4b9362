"""data.max_train_tasks: the seeded pool GRPO draws its steps from."""

from grpo_trainer.training.grpo import training_pool


def test_pool_is_a_seeded_sample_in_file_order():
    tasks = list(range(100))
    pool = training_pool(tasks, 4, seed=42)
    assert len(pool) == 4 and pool == sorted(pool) and set(pool) <= set(tasks)
    assert training_pool(tasks, 4, seed=42) == pool
    assert training_pool(tasks, 4, seed=7) != pool


def test_no_limit_or_a_large_one_keeps_every_task():
    tasks = list(range(10))
    assert training_pool(tasks, None, seed=1) == tasks
    assert training_pool(tasks, 50, seed=1) == tasks
