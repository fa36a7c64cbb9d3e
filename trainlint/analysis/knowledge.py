"""What trainlint knows about the libraries, as data: qualified names, defaults, thresholds.

Rules and the model look things up here instead of branching on names in code (the TorchFix idea:
knowledge as tables). Qualified names are normalized by `names.normalize` first, so `tf.keras.X`
and `keras.src.X` are looked up as `keras.X`.
"""
from __future__ import annotations

# Optimizer constructors -> default learning rate.
TORCH_OPTIMIZERS: dict[str, float] = {
    "torch.optim.Adam": 1e-3,
    "torch.optim.AdamW": 1e-3,
    "torch.optim.Adamax": 2e-3,
    "torch.optim.NAdam": 2e-3,
    "torch.optim.RAdam": 1e-3,
    "torch.optim.RMSprop": 1e-2,
    "torch.optim.Adagrad": 1e-2,
    "torch.optim.Adadelta": 1.0,
    "torch.optim.Adafactor": 1e-2,
    "torch.optim.SparseAdam": 1e-3,
    "torch.optim.SGD": 1e-3,
    "torch.optim.ASGD": 1e-2,
    "torch.optim.Rprop": 1e-2,
    "torch.optim.LBFGS": 1.0,
}
KERAS_OPTIMIZERS: dict[str, float] = {
    "keras.optimizers.Adam": 1e-3,
    "keras.optimizers.AdamW": 1e-3,
    "keras.optimizers.Adamax": 1e-3,
    "keras.optimizers.Nadam": 1e-3,
    "keras.optimizers.RMSprop": 1e-3,
    "keras.optimizers.Adagrad": 1e-3,
    "keras.optimizers.Adadelta": 1e-3,
    "keras.optimizers.Adafactor": 1e-3,
    "keras.optimizers.Ftrl": 1e-3,
    "keras.optimizers.Lion": 1e-4,
    "keras.optimizers.Lamb": 1e-3,
    "keras.optimizers.SGD": 1e-2,
}
# Optimizers from other libraries: known to be optimizers, defaults not tabled.
OTHER_OPTIMIZER_PREFIXES: tuple[str, ...] = (
    "transformers.AdamW",
    "transformers.optimization.",
    "timm.optim.",
    "bitsandbytes.optim.",
    "apex.optimizers.",
    "torch_optimizer.",
    "torch.distributed.optim.ZeroRedundancyOptimizer",
)
# Factories that return an optimizer.
OPTIMIZER_FACTORIES: frozenset[str] = frozenset({
    "timm.optim.create_optimizer_v2",
    "timm.optim.create_optimizer",
})

LR_SCHEDULER_PREFIXES: tuple[str, ...] = (
    "torch.optim.lr_scheduler.",
    "transformers.get_",  # get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup, ...
    "transformers.optimization.get_",
    "timm.scheduler.",
    "keras.optimizers.schedules.",
)
# Schedulers whose step() takes a metric and belongs after validation.
METRIC_SCHEDULERS: frozenset[str] = frozenset({"torch.optim.lr_scheduler.ReduceLROnPlateau"})
# Schedulers built on torch.optim.lr_scheduler.LRScheduler: step() advances the schedule by one and must
# follow optimizer.step() (PyTorch >= 1.1 warns otherwise and the first value of the schedule is skipped).
ORDERED_SCHEDULER_PREFIXES: tuple[str, ...] = (
    "torch.optim.lr_scheduler.",
    "transformers.get_",
    "transformers.optimization.get_",
)

GRAD_SCALERS: frozenset[str] = frozenset({
    "torch.cuda.amp.GradScaler",
    "torch.amp.GradScaler",
    "torch.GradScaler",
    "torch.cpu.amp.GradScaler",
})

# Objects whose backward(loss) runs autograd (the loss is the first argument).
BACKWARD_OWNERS: frozenset[str] = frozenset({
    "accelerate.Accelerator",
    "lightning.Fabric",
    "lightning.fabric.Fabric",
    "lightning_fabric.Fabric",
})

DATA_SCALER_PREFIXES: tuple[str, ...] = (
    "sklearn.preprocessing.",
    "sklearn.decomposition.",
    "sklearn.feature_extraction.",
    "sklearn.feature_selection.",
    "sklearn.impute.",
    "sklearn.random_projection.",
    "sklearn.manifold.",
    "sklearn.kernel_approximation.",
)
# Keras preprocessing layers that learn statistics through adapt().
ADAPTABLE_LAYERS: frozenset[str] = frozenset({
    "keras.layers.Normalization",
    "keras.layers.TextVectorization",
    "keras.layers.StringLookup",
    "keras.layers.IntegerLookup",
    "keras.layers.Discretization",
    "keras.layers.experimental.preprocessing.Normalization",
    "keras.layers.experimental.preprocessing.TextVectorization",
})

TORCH_MODEL_BASES: frozenset[str] = frozenset({"torch.nn.Module", "torch.nn.Sequential", "torch.nn.ModuleList"})
KERAS_MODEL_CONSTRUCTORS: frozenset[str] = frozenset({"keras.Model", "keras.Sequential", "keras.models.Model",
                                                     "keras.models.Sequential"})
# Keras layers whose behaviour depends on the `training` argument.
TRAINING_DEPENDENT_LAYERS: frozenset[str] = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout", "GaussianDropout",
    "GaussianNoise", "BatchNormalization", "ActivityRegularization", "RandomFlip", "RandomRotation",
    "RandomZoom", "RandomTranslation", "RandomContrast", "RandomCrop",
})

CLIP_FUNCTIONS: frozenset[str] = frozenset({
    "torch.nn.utils.clip_grad_norm_",
    "torch.nn.utils.clip_grad_value_",
    "torch.nn.utils.clip_grad.clip_grad_norm_",
    "torch.nn.utils.clip_grad.clip_grad_value_",
    "torch.nn.utils.clip_grad_norm",
})
TF_CLIP_FUNCTIONS: frozenset[str] = frozenset({
    "tensorflow.clip_by_global_norm", "tensorflow.clip_by_norm", "tensorflow.clip_by_value",
})

# Context managers and decorators that switch autograd off.
NO_GRAD: frozenset[str] = frozenset({
    "torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad",
})
# torch.set_grad_enabled(False) is no_grad too; with a non-literal argument it is unknown.
SET_GRAD_ENABLED: frozenset[str] = frozenset({"torch.set_grad_enabled", "torch.autograd.set_grad_enabled"})

AUTOGRAD_BACKWARD: frozenset[str] = frozenset({"torch.autograd.backward"})
ARGPARSE_PARSERS: frozenset[str] = frozenset({"argparse.ArgumentParser"})
TRAIN_TEST_SPLIT: frozenset[str] = frozenset({"sklearn.model_selection.train_test_split"})

# Names that, as a last resort, say what an object is.
EVAL_SPLIT_WORDS: frozenset[str] = frozenset({"val", "valid", "validation", "dev", "test", "holdout", "eval"})
TRAIN_SPLIT_WORDS: frozenset[str] = frozenset({"train", "training", "tr"})
