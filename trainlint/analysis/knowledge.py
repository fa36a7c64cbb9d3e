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
    "keras.optimizers.Lion": 1e-3,
    "keras.optimizers.Lamb": 1e-3,
    "keras.optimizers.SGD": 1e-2,
}
# Where an optimizer constructor takes its learning rate: prefix -> (positional index, keywords).
OPTIMIZER_LR_ARGUMENT: dict[str, tuple[int, tuple[str, ...]]] = {
    "torch.optim.": (1, ("lr",)),
    "keras.optimizers.": (0, ("learning_rate", "lr")),
}
# TL006: a learning rate at or above this, with nothing scaling it down, is far above what is safe.
# Adaptive optimizers: 100x the framework default (10x flagged mostly deliberate, working settings on real
# code); SGD-like ones: 1.0. Keras defaults are lower than torch's for Adagrad/Adadelta/Adafactor (0.001,
# and Keras documents 1.0 for Adadelta): those take torch's limits. (Rprop, LBFGS and Keras Ftrl are not
# listed.) Users override per optimizer in [tool.trainlint.unscaled-high-lr] thresholds.
UNSCALED_LR_LIMITS: dict[str, float] = {
    "torch.optim.Adam": 0.1,
    "torch.optim.AdamW": 0.1,
    "torch.optim.Adamax": 0.2,
    "torch.optim.NAdam": 0.2,
    "torch.optim.RAdam": 0.1,
    "torch.optim.SparseAdam": 0.1,
    "torch.optim.RMSprop": 1.0,
    "torch.optim.Adagrad": 1.0,
    "torch.optim.Adadelta": 10.0,
    "torch.optim.Adafactor": 1.0,
    "torch.optim.SGD": 1.0,
    "torch.optim.ASGD": 1.0,
    "keras.optimizers.Adam": 0.1,
    "keras.optimizers.AdamW": 0.1,
    "keras.optimizers.Adamax": 0.1,
    "keras.optimizers.Nadam": 0.1,
    "keras.optimizers.RMSprop": 0.1,
    "keras.optimizers.Lion": 0.1,
    "keras.optimizers.Lamb": 0.1,
    "keras.optimizers.Adagrad": 1.0,
    "keras.optimizers.Adafactor": 1.0,
    "keras.optimizers.Adadelta": 10.0,
    "keras.optimizers.SGD": 1.0,
}
# Keras callbacks that change the compiled optimizer's learning rate during fit().
KERAS_LR_CALLBACKS: frozenset[str] = frozenset({
    "keras.callbacks.ReduceLROnPlateau", "keras.callbacks.LearningRateScheduler",
})
# Optimizers from other libraries: known to be optimizers, defaults not tabled.
OTHER_OPTIMIZER_PREFIXES: tuple[str, ...] = (
    "transformers.AdamW",
    "transformers.optimization.",
    "timm.optim.",
    "bitsandbytes.optim.",
    "apex.optimizers.",
    "torch_optimizer.",
    "torch.distributed.optim.ZeroRedundancyOptimizer",
    "pytorch_transformers.AdamW", "pytorch_transformers.optimization.AdamW",
    "pytorch_pretrained_bert.BertAdam", "pytorch_pretrained_bert.optimization.BertAdam",
    "pytorch_pretrained_bert.OpenAIAdam", "pytorch_pretrained_bert.optimization.OpenAIAdam",
    "deepspeed.ops.adam.", "deepspeed.ops.lamb.",
)
# The class names optimizers of other libraries go by (`lion_pytorch.Lion`, `adabelief_pytorch.AdaBelief`,
# `madgrad.MADGRAD`): an object of an imported class so named is an optimizer (defaults not tabled).
OPTIMIZER_CLASS_NAME = r"(?:\w*(?:Adam|ADAM|SGD|Optimi[sz]er|Lamb|LAMB|Lion|Lars|LARS|Ranger|RMSprop|Adagrad|Adadelta" \
                       r"|Adafactor|AdaBelief|Sophia|Shampoo|Muon|MADGRAD|NovoGrad|Novograd|Prodigy)\w*)"
# Factories that return an optimizer.
OPTIMIZER_FACTORIES: frozenset[str] = frozenset({
    "timm.optim.create_optimizer_v2",
    "timm.optim.create_optimizer",
})

# Schedules of pytorch-transformers (transformers' name before 2.0): LambdaLR subclasses.
LEGACY_SCHEDULER_PREFIXES: tuple[str, ...] = (
    "pytorch_transformers.Warmup", "pytorch_transformers.optimization.Warmup",
    "pytorch_transformers.ConstantLRSchedule", "pytorch_transformers.optimization.ConstantLRSchedule",
)
LR_SCHEDULER_PREFIXES: tuple[str, ...] = (
    *LEGACY_SCHEDULER_PREFIXES,
    "torch.optim.lr_scheduler.",
    "transformers.get_",  # get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup, ...
    "transformers.optimization.get_",
    "timm.scheduler.",
    "keras.optimizers.schedules.",
    "torch.optim.swa_utils.SWALR",
)
# Trainers that build and step an LR schedule for the optimizer handed to them (HF Trainer's default is a
# linear decay; DeepSpeed reads one from its config): an optimizer given to them is scheduled.
LR_SCHEDULING_OWNERS: tuple[str, ...] = (
    "transformers.Trainer", "transformers.Seq2SeqTrainer", "transformers.trainer.", "trl.", "deepspeed.initialize",
)
# Schedulers whose step() takes a metric and belongs after validation.
METRIC_SCHEDULERS: frozenset[str] = frozenset({"torch.optim.lr_scheduler.ReduceLROnPlateau"})
# Schedulers built on torch.optim.lr_scheduler.LRScheduler: step() advances the schedule by one and must
# follow optimizer.step() (PyTorch >= 1.1 warns otherwise and the first value of the schedule is skipped).
ORDERED_SCHEDULER_PREFIXES: tuple[str, ...] = (
    *LEGACY_SCHEDULER_PREFIXES,
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
    "sklearn.compose.ColumnTransformer",
    "sklearn.compose.make_column_transformer",
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
    "keras.layers.experimental.preprocessing.StringLookup",
    "keras.layers.experimental.preprocessing.IntegerLookup",
    "keras.layers.experimental.preprocessing.Discretization",
    "keras.utils.FeatureSpace",
})

# scikit-learn transformers well known enough to be used without their import (a notebook fragment that
# imported them in a cell it does not show): a call of the bare name, bound nowhere in the file, is theirs.
WELL_KNOWN_UNIMPORTED: dict[str, str] = {
    "StandardScaler": "sklearn.preprocessing.StandardScaler",
    "MinMaxScaler": "sklearn.preprocessing.MinMaxScaler",
    "RobustScaler": "sklearn.preprocessing.RobustScaler",
    "MaxAbsScaler": "sklearn.preprocessing.MaxAbsScaler",
    "QuantileTransformer": "sklearn.preprocessing.QuantileTransformer",
    "PowerTransformer": "sklearn.preprocessing.PowerTransformer",
}

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
    "tensorflow.compat.v1.clip_by_global_norm", "tensorflow.compat.v1.clip_by_norm",
    "tensorflow.compat.v1.clip_by_value", "tensorflow.compat.v1.clip_by_average_norm",
})
# Keyword arguments of a Keras optimizer constructor that make it clip every update itself.
KERAS_OPTIMIZER_CLIPPING: frozenset[str] = frozenset({"clipnorm", "global_clipnorm", "clipvalue"})

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

# sklearn transformers whose fit learns nothing from the values (stateless, or only the data's shape or
# a random draw): fitting them on any split is harmless. Class names.
STATELESS_TRANSFORMERS: frozenset[str] = frozenset({
    "Normalizer", "Binarizer", "FunctionTransformer", "PolynomialFeatures", "FeatureHasher", "HashingVectorizer",
    "GaussianRandomProjection", "SparseRandomProjection", "RBFSampler", "SkewedChi2Sampler",
    "AdditiveChi2Sampler", "PolynomialCountSketch",
})
# Encoders that learn the set of categories only: fitting them on all the data before the split is usual.
CATEGORY_ENCODERS: frozenset[str] = frozenset({
    "LabelEncoder", "OneHotEncoder", "OrdinalEncoder", "LabelBinarizer", "MultiLabelBinarizer",
})
# Embeddings for plots (t-SNE & co.) are fit on whatever is plotted, test data included.
VISUALIZATION_PREFIXES: tuple[str, ...] = ("sklearn.manifold.",)
# Also used to look at held-out data (`PCA(2).fit_transform(test_features)` for a plot): a fit on
# held-out data counts as leakage only when the script fits the same kind of transformer on training data.
EXPLORATORY_PREFIXES: tuple[str, ...] = ("sklearn.decomposition.", "sklearn.kernel_approximation.")

# -- autograd: what keeps a tensor's graph and what lets go of it (TL004) -----------------------------
# Tensor methods that return a value with no autograd graph.
DETACHING_METHODS: frozenset[str] = frozenset({"item", "detach", "detach_", "tolist", "numpy"})
# Attributes that are not attached to the graph (`loss.data` is the detached storage).
DETACHED_ATTRIBUTES: frozenset[str] = frozenset({"data", "grad", "shape", "dtype", "device", "requires_grad",
                                                 "is_cuda", "ndim"})
# Builtins that turn a tensor into a Python value.
DETACHING_BUILTINS: frozenset[str] = frozenset({"float", "int", "round", "bool", "str", "repr", "len", "format"})
# Tensor methods whose result is still part of the receiver's graph.
GRAPH_KEEPING_METHODS: frozenset[str] = frozenset({
    "mean", "sum", "float", "double", "half", "bfloat16", "clone", "view", "view_as", "reshape", "squeeze",
    "unsqueeze", "to", "cuda", "cpu", "contiguous", "flatten", "abs", "sqrt", "exp", "log", "pow", "mul", "div",
    "add", "sub", "neg", "expand", "expand_as", "repeat", "type", "type_as", "t", "transpose", "permute", "norm",
    "prod", "clamp", "squeeze_", "unsqueeze_", "mul_", "div_", "add_", "sub_", "nan_to_num",
})
# Calls that accept a Python number where a 0-dim tensor was (a value only printed, logged, formatted,
# compared or reduced by them can become `loss.item()`), by the last part of their name.
NUMBER_CONSUMERS: frozenset[str] = frozenset({
    "print", "float", "int", "round", "str", "repr", "format", "len", "sum", "min", "max", "abs", "sorted",
    "mean", "median", "average", "std", "stdev", "fsum", "isnan", "isfinite", "isinf", "exp", "log",
    "dump", "dumps", "info", "debug", "warning", "warn", "error", "write", "add_scalar", "add_scalars",
    "log_metrics", "log_metric", "log_dict", "set_postfix", "set_description", "tensor", "as_tensor", "array",
    "asarray", "save", "plot",
})
# Modules whose functions need tensors (a value passed to them must stay a tensor), but for these.
TENSOR_MODULES: tuple[str, ...] = ("torch.",)
TENSOR_MODULE_NUMBER_CONSUMERS: frozenset[str] = frozenset({"torch.tensor", "torch.as_tensor", "torch.save"})

# -- evaluation phases (TL008, TL016) ------------------------------------------------------------------------
# torch.nn layers whose forward depends on train() / eval(): dropout drops only in train mode, batch norm
# normalises with (and updates) batch statistics only in train mode, RReLU draws its slope only in train mode.
TORCH_MODE_DEPENDENT_LAYERS: frozenset[str] = frozenset({
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
    "SyncBatchNorm", "RReLU",
})
# torch.nn layers with a `dropout` argument, and its default: mode-dependent when it is not 0 (for the
# recurrent layers it only acts between stacked layers, so `num_layers` must be above 1 as well).
TORCH_DROPOUT_ARGUMENT_LAYERS: dict[str, float] = {
    "TransformerEncoderLayer": 0.1, "TransformerDecoderLayer": 0.1, "Transformer": 0.1,
    "LSTM": 0.0, "GRU": 0.0, "RNN": 0.0,
}
# Containers and wrappers that hold the modules they are given (their arguments are what they hold).
TORCH_MODULE_CONTAINERS: frozenset[str] = frozenset({
    "torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict", "torch.nn.DataParallel",
    "torch.nn.parallel.DataParallel", "torch.nn.parallel.DistributedDataParallel", "torch.compile",
    "copy.deepcopy", "collections.OrderedDict",
})
# torchvision.models: every classification, segmentation and video model holds batch norm, dropout or
# stochastic depth, but these: ViT has dropout 0 by default; detection models compute their losses in train
# mode, so validating them in train mode under no_grad is a known way to get a validation loss.
TORCHVISION_MODE_FREE_PREFIXES: tuple[str, ...] = (
    "torchvision.models.vit_", "torchvision.models.VisionTransformer", "torchvision.models.vision_transformer.",
    "torchvision.models.detection.", "torchvision.models.optical_flow.", "torchvision.models.quantization.",
    "torchvision.models.get_", "torchvision.models.list_",
)
# timm.create_model names (prefixes) of architectures built with batch norm. Transformer-style timm models
# (vit, deit, swin, convnext, ...) have dropout and drop-path 0 by default: unknown unless `drop_rate` /
# `drop_path_rate` is given.
TIMM_BATCH_NORM_PREFIXES: tuple[str, ...] = (
    "resnet", "resnext", "wide_resnet", "seresnet", "seresnext", "ecaresnet", "resnest", "res2net", "regnet",
    "efficientnet", "tf_efficientnet", "mobilenet", "tf_mobilenet", "mnasnet", "densenet", "dla", "dpn", "hrnet",
    "inception", "xception", "cspresnet", "cspdarknet", "darknet", "ghostnet", "rexnet", "mixnet", "tf_mixnet",
    "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "legacy_seresnet", "skresnet", "selecsls", "tresnet",
)
TIMM_DROPOUT_KEYWORDS: tuple[str, ...] = ("drop_rate", "drop_path_rate")

# Names of functions that evaluate a model (their `_`-separated words): `evaluate`, `validate_one_epoch`,
# `test_model`, `run_inference`. A name that also says it trains (`train_and_evaluate`) is not one.
EVAL_FUNCTION_WORDS: frozenset[str] = frozenset({
    "evaluate", "evaluation", "eval", "validate", "validation", "valid", "val", "test", "testing", "predict",
    "prediction", "predictions", "inference", "infer",
})
TRAIN_FUNCTION_WORDS: frozenset[str] = frozenset({"train", "training", "fit", "finetune", "optimize", "update",
                                                  "backward", "attack", "adversarial", "adv", "saliency"})
# Hooks a framework runs under no_grad and in eval mode itself (Lightning, Keras, HF Trainer).
FRAMEWORK_EVAL_HOOKS: frozenset[str] = frozenset({
    "validation_step", "test_step", "predict_step", "validation_epoch_end", "test_epoch_end",
    "on_validation_epoch_end", "on_test_epoch_end", "on_validation_batch_end", "on_test_batch_end",
    "prediction_step", "evaluation_loop", "prediction_loop",
})
# Base classes whose subclasses' methods run inside a framework's loop (it sets the mode and autograd).
FRAMEWORK_BASE_PREFIXES: tuple[str, ...] = (
    "pytorch_lightning.", "lightning.", "keras.", "tensorflow.", "transformers.Trainer", "transformers.trainer.",
    "transformers.Seq2SeqTrainer", "ignite.", "catalyst.", "composer.", "accelerate.", "trl.",
)
# Calls that differentiate without `backward()`: an evaluation that calls them needs autograd on.
AUTOGRAD_CALLS: frozenset[str] = frozenset({
    "torch.autograd.grad", "torch.autograd.backward", "torch.autograd.functional.jacobian",
    "torch.autograd.functional.hessian", "torch.autograd.functional.vjp", "torch.autograd.functional.jvp",
    "torch.autograd.functional.hvp", "torch.autograd.functional.vhp", "torch.func.grad", "torch.func.vjp",
    "torch.func.jvp", "torch.func.jacrev", "torch.func.jacfwd", "torch.func.hessian", "torch.func.grad_and_value",
    "functorch.grad", "functorch.vjp", "functorch.jacrev", "functorch.jacfwd",
})
# Context managers / decorators that switch autograd on (or to a value only known at run time).
ENABLE_GRAD: frozenset[str] = frozenset({
    "torch.enable_grad", "torch.autograd.enable_grad", "torch.autograd.grad_mode.enable_grad",
})
# Calls that look at a model without running or changing it: handing the model to them says nothing about
# its mode or its gradients.
MODEL_INSPECTORS: frozenset[str] = frozenset({
    "print", "len", "str", "repr", "isinstance", "type", "id", "hasattr", "getattr", "vars", "dir",
    "torch.save", "torch.nn.DataParallel", "torch.nn.parallel.DistributedDataParallel", "torch.compile",
    "count_parameters", "count_params", "summary", "watch", "info", "debug", "format", "get_model_complexity_info",
})
# The words of a loss or metric computed on a model's outputs (last part of a call's name, `_`-separated).
METRIC_WORDS: frozenset[str] = frozenset({
    "loss", "criterion", "metric", "metrics", "accuracy", "acc", "score", "f1", "auc", "roc", "precision",
    "recall", "mse", "mae", "rmse", "error", "err", "iou", "dice", "bleu", "perplexity", "ppl", "nll",
    "cross", "entropy", "correct", "eq", "argmax", "topk", "evaluate", "compute", "update", "confusion",
    "psnr", "ssim", "map", "cer", "wer",
})
# torch.nn modules without parameters: calling one with autograd on records no graph of its own (a loss
# module, an activation, pooling, reshaping). Losses are also every `torch.nn.*Loss`.
TORCH_PARAMETER_FREE_MODULES: frozenset[str] = frozenset({
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Softmin", "Softplus", "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish", "Tanhshrink",
    "Threshold", "GLU", "Identity", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle",
    "PixelUnshuffle", "CosineSimilarity", "PairwiseDistance", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d",
    "ReflectionPad2d", "ReplicationPad2d",
})
