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
# TL006 contexts: what an optimizer trains can make much lower rates wrong than the limits above. The
# Adam family (each weight moves by about `lr` per step, whatever the gradient) is what these limits are for.
ADAM_FAMILY: frozenset[str] = frozenset({
    "torch.optim.Adam", "torch.optim.AdamW", "torch.optim.NAdam", "torch.optim.RAdam", "torch.optim.Adamax",
    "keras.optimizers.Adam", "keras.optimizers.AdamW", "keras.optimizers.Nadam", "keras.optimizers.Adamax",
})
# Plain SGD moves weights by `lr` times the gradient: once the gradient's norm is clipped the step is bounded
# by lr * max_norm, and recurrent language models train at lr 20-30 with clip 0.25 (pytorch/examples
# word_language_model, AWD-LSTM): clipping that optimizer's gradients lifts its limit.
SGD_FAMILY: frozenset[str] = frozenset({"torch.optim.SGD", "torch.optim.ASGD", "keras.optimizers.SGD"})
# Context -> (limit for the Adam family, the rate the fix writes). See TL006's page for the evidence.
PRETRAINED_TRANSFORMER = "pretrained-transformer"  # fine-tuning a pretrained transformer (BERT, GPT-2, ViT)
PRETRAINED_NETWORK = "pretrained-network"  # fine-tuning another pretrained network (a CNN, a checkpoint)
TRANSFORMER_FROM_SCRATCH = "transformer-from-scratch"  # a Post-LN transformer trained from scratch, no warmup
CONTEXT_LR_LIMITS: dict[str, tuple[float, float]] = {
    PRETRAINED_TRANSFORMER: (1e-3, 5e-5),  # BERT/RoBERTa fine-tune at 1e-5..5e-5; HF Trainer's default is 5e-5
    PRETRAINED_NETWORK: (1e-2, 1e-3),  # 10x Adam's default; the fix is the framework default
    TRANSFORMER_FROM_SCRATCH: (1e-3, 1e-4),  # Post-LN without warmup fails at 5e-4..1e-3 (Xiong et al. 2020)
}
# A single linear layer (linear / logistic regression, SGC): a convex problem whose Adam steps stay bounded;
# the TensorFlow regression tutorial and the SGC paper train it at Adam 0.1-0.2. Its limits are this many
# times the network limits above.
LINEAR_MODEL_LIMIT_FACTOR = 5.0
LINEAR_LAYERS: frozenset[str] = frozenset({
    "torch.nn.Linear", "torch.nn.LazyLinear", "keras.layers.Dense", "torch_geometric.nn.SGConv",
})
# Layers without weights an optimizer trains: a model made of one linear layer and these is linear.
WEIGHTLESS_LAYERS: frozenset[str] = frozenset({
    "torch.nn.Dropout", "torch.nn.ReLU", "torch.nn.Sigmoid", "torch.nn.Tanh", "torch.nn.Softmax",
    "torch.nn.LogSoftmax", "torch.nn.Identity", "torch.nn.Flatten",
    "keras.layers.Dropout", "keras.layers.Flatten", "keras.layers.Normalization", "keras.layers.Input",
    "keras.layers.InputLayer", "keras.layers.Activation", "keras.layers.Softmax", "keras.layers.Rescaling",
    "keras.layers.StringLookup", "keras.layers.IntegerLookup", "keras.layers.Reshape",
    "keras.layers.experimental.preprocessing.Normalization",
})
# Where `X.from_pretrained(...)` (or keras-hub's `from_preset`) loads pretrained weights.
PRETRAINED_HUBS: tuple[str, ...] = (
    "transformers.", "pytorch_transformers.", "pytorch_pretrained_bert.", "keras_hub.", "keras_nlp.",
)
# torchvision / timm / keras.applications build a pretrained model when asked (weights=..., pretrained=True;
# keras.applications loads "imagenet" weights unless told `weights=None`).
TORCHVISION_MODELS = "torchvision.models."
TIMM_CREATE_MODEL: frozenset[str] = frozenset({"timm.create_model", "timm.models.create_model"})
KERAS_APPLICATIONS = "keras.applications."
# Names of vision transformers (torchvision `vit_b_16`, timm `vit_base_patch16_224`, HF `ViTModel`): a
# pretrained model so named is a transformer; other torchvision / timm / keras.applications models are CNNs.
VISION_TRANSFORMER_NAME = r"(?i)(^|[\s._/-])(vit|deit|swin|beit|eva|cait|xcit|maxvit|levit|crossvit|pvt|twins|volo" \
                          r"|convit|coat|mvit|dinov2|clip|siglip|segformer|dpt)"
# ... and names of CNNs hosted by transformers / keras-hub (`AutoModel.from_pretrained("microsoft/resnet-50")`).
CNN_NAME = r"(?i)(resnet|resnext|efficientnet|mobilenet|convnext|regnet|densenet|vgg|inception|xception|alexnet" \
           r"|squeezenet|shufflenet|mnasnet|googlenet|nasnet|darknet|cspnet|yolo|unet|deeplab|bit-)"
# The transformers built into PyTorch: Post-LN (layer norm after each residual sum) unless `norm_first=True`.
TORCH_TRANSFORMERS: frozenset[str] = frozenset({
    "torch.nn.Transformer", "torch.nn.TransformerEncoder", "torch.nn.TransformerDecoder",
    "torch.nn.TransformerEncoderLayer", "torch.nn.TransformerDecoderLayer",
})
# Hugging Face model families with Post-LN blocks, built from a config (`BertForMaskedLM(config)`): trained
# from scratch. (GPT-2, GPT-Neo, Llama, T5 & co. are Pre-LN: they train without warmup, Xiong et al. 2020.)
HF_POST_LN_FAMILIES = r"(Bert|Roberta|XLMRoberta|Camembert|Electra|DistilBert|Albert|Bart|MBart|Marian|Ernie|Deberta" \
                      r"|DebertaV2|MPNet|Longformer|Funnel)"
# Schedulers that only ever lower the rate (no warmup): enough to silence the 100x limit, not the
# from-scratch transformer context, which is about the first steps.
DECAY_ONLY_SCHEDULERS: frozenset[str] = frozenset({
    "torch.optim.lr_scheduler.StepLR", "torch.optim.lr_scheduler.MultiStepLR",
    "torch.optim.lr_scheduler.ExponentialLR", "torch.optim.lr_scheduler.CosineAnnealingLR",
    "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts", "torch.optim.lr_scheduler.ReduceLROnPlateau",
    "torch.optim.lr_scheduler.PolynomialLR", "keras.callbacks.ReduceLROnPlateau",
})
# Keras 2 optimizers' `decay=` argument: time-based decay, lr / (1 + decay * iterations).
KERAS_DECAY_ARGUMENTS: frozenset[str] = frozenset({"decay"})
# What makes a tensor (not a module's parameter): an optimizer over such tensors optimises data
# (a latent, an input image, an adversarial perturbation), not a model.
TENSOR_FACTORIES: frozenset[str] = frozenset({
    "torch.zeros", "torch.ones", "torch.randn", "torch.rand", "torch.empty", "torch.full", "torch.tensor",
    "torch.as_tensor", "torch.from_numpy", "torch.zeros_like", "torch.ones_like", "torch.randn_like",
    "torch.rand_like", "torch.empty_like", "torch.full_like", "torch.normal", "torch.randint", "torch.linspace",
    "torch.arange", "torch.eye", "torch.Tensor", "torch.FloatTensor",
})
TENSOR_ONLY_METHODS: frozenset[str] = frozenset({
    "clone", "detach", "requires_grad_", "detach_", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor",
    "uniform_", "normal_", "zero_", "fill_",
})
PARAMETER_WRAPPERS: frozenset[str] = frozenset({"torch.nn.Parameter", "torch.nn.parameter.Parameter"})
# Libraries that train adapters on a frozen model (LoRA & co.).
ADAPTER_PREFIXES: tuple[str, ...] = ("peft.",)

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
# Constructors whose module starts in training mode (nn.Module's default); `from_pretrained` and loaders are not
# among them (Hugging Face returns its models in eval mode), nor wrappers of a module they are handed.
FRESH_MODULE_PREFIXES: tuple[str, ...] = ("torch.nn.", "torchvision.models.", "timm.create_model")
MODULE_WRAPPERS: tuple[str, ...] = ("torch.nn.parallel.", "torch.nn.DataParallel", "torch.nn.SyncBatchNorm",
                                    "torch.nn.utils.", "torch.nn.Module")
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
TRAIN_TEST_SPLIT: frozenset[str] = frozenset({"sklearn.model_selection.train_test_split",
                                              "sklearn.cross_validation.train_test_split"})
# Cross-validation splitters: `for train_idx, val_idx in kf.split(X)` yields (training rows, held-out rows).
CV_SPLITTERS: frozenset[str] = frozenset({
    "KFold", "StratifiedKFold", "GroupKFold", "StratifiedGroupKFold", "TimeSeriesSplit", "ShuffleSplit",
    "StratifiedShuffleSplit", "GroupShuffleSplit", "RepeatedKFold", "RepeatedStratifiedKFold", "LeaveOneOut",
    "LeavePOut", "LeaveOneGroupOut", "LeavePGroupsOut", "PredefinedSplit", "MultilabelStratifiedKFold",
    "RepeatedMultilabelStratifiedKFold", "MultilabelStratifiedShuffleSplit",
})
CV_SPLITTER_MODULES: tuple[str, ...] = ("sklearn.model_selection.", "sklearn.cross_validation.", "iterstrat.")
# Words that make a name an index of rows (`train_idx`, `val_index`, `test_mask`): `X[val_idx]` selects rows.
ROW_INDEX_WORDS: frozenset[str] = frozenset({
    "idx", "idxs", "index", "indices", "indexes", "ind", "inds", "ids", "ix", "mask", "rows",
})
# DataFrame methods that return some of the rows (`train = df.sample(frac=0.8)`, `df.head(n)`).
ROW_METHODS: frozenset[str] = frozenset({"sample", "head", "tail"})

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
# ... and those stateless with one setting: the old `Imputer(axis=1)` fills each row with that row's own mean.
STATELESS_WHEN: dict[str, tuple[str, object]] = {"Imputer": ("axis", 1)}
# Words that name a model's outputs (`pred2`, `test_preds`, `oof`, `probs`): scaling predictions to blend
# them learns nothing a model is trained with.
PREDICTION_WORDS: frozenset[str] = frozenset({
    "pred", "preds", "prediction", "predictions", "predicted", "oof", "proba", "probas", "probs", "logits",
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

# -- what reaches a loss (TL009, TL010; analysis/losses.py) -------------------------------------------
# The kinds a classifier's prediction can have when it reaches a loss: raw scores ("logits"), probabilities
# ("softmax", "sigmoid") or log-probabilities ("log_softmax").
# Functions that apply an activation to their first argument, and what their result is.
ACTIVATION_FUNCTIONS: dict[str, str] = {
    "torch.softmax": "softmax", "torch.nn.functional.softmax": "softmax", "torch.special.softmax": "softmax",
    "torch.sigmoid": "sigmoid", "torch.nn.functional.sigmoid": "sigmoid", "torch.special.expit": "sigmoid",
    "torch.log_softmax": "log_softmax", "torch.nn.functional.log_softmax": "log_softmax",
    "torch.special.log_softmax": "log_softmax",
    "tensorflow.nn.softmax": "softmax", "tensorflow.math.softmax": "softmax", "tensorflow.sigmoid": "sigmoid",
    "tensorflow.nn.sigmoid": "sigmoid", "tensorflow.math.sigmoid": "sigmoid",
    "tensorflow.nn.log_softmax": "log_softmax", "tensorflow.math.log_softmax": "log_softmax",
    "keras.activations.softmax": "softmax", "keras.activations.sigmoid": "sigmoid",
    "keras.activations.log_softmax": "log_softmax", "keras.ops.softmax": "softmax", "keras.ops.sigmoid": "sigmoid",
    "keras.ops.log_softmax": "log_softmax", "keras.backend.softmax": "softmax", "keras.backend.sigmoid": "sigmoid",
}
# Tensor methods that apply an activation to the tensor (`logits.softmax(dim=1)`).
ACTIVATION_METHODS: dict[str, str] = {"softmax": "softmax", "sigmoid": "sigmoid", "log_softmax": "log_softmax"}
# Layers (modules) whose output is an activation of their input.
ACTIVATION_LAYERS: dict[str, str] = {
    "torch.nn.Softmax": "softmax", "torch.nn.Sigmoid": "sigmoid", "torch.nn.LogSoftmax": "log_softmax",
    "keras.layers.Softmax": "softmax",
}
# The log of probabilities is a log-probability (`torch.log(F.softmax(x, 1))`): functions and methods.
LOG_FUNCTIONS: frozenset[str] = frozenset({"torch.log", "tensorflow.math.log", "tensorflow.log", "keras.ops.log"})
# Keras `activation=` values (strings, or these functions) and what the layer outputs; None and a missing
# activation make a linear layer's output logits.
KERAS_ACTIVATIONS: dict[str, str] = {"softmax": "softmax", "sigmoid": "sigmoid", "log_softmax": "log_softmax",
                                     "linear": "logits"}
KERAS_ACTIVATION_FUNCTIONS: dict[str, str] = {
    "keras.activations.softmax": "softmax", "keras.activations.sigmoid": "sigmoid",
    "keras.activations.linear": "logits", "tensorflow.nn.softmax": "softmax", "tensorflow.nn.sigmoid": "sigmoid",
    "tensorflow.sigmoid": "sigmoid", "tensorflow.math.sigmoid": "sigmoid",
}
KERAS_ACTIVATION_LAYER = "keras.layers.Activation"
# Keras layers that compute a linear map, with the position of their `activation` argument.
KERAS_LINEAR_LAYERS: dict[str, int] = {
    "keras.layers.Dense": 1, "keras.layers.Conv1D": 7, "keras.layers.Conv2D": 7, "keras.layers.Conv3D": 7,
    "keras.layers.Convolution1D": 7, "keras.layers.Convolution2D": 7, "keras.layers.Convolution3D": 7,
}
# Layers that hand their input's kind on (a softmax reshaped is still a softmax).
SHAPE_LAYERS: frozenset[str] = frozenset({
    "torch.nn.Flatten", "torch.nn.Unflatten", "torch.nn.Dropout", "torch.nn.Identity",
    "keras.layers.Flatten", "keras.layers.Reshape", "keras.layers.Permute", "keras.layers.Dropout",
})
# Wrappers whose call runs the wrapped model (`DataParallel(model)(x)` is `model(x)`).
MODEL_WRAPPERS: frozenset[str] = frozenset({
    "torch.nn.DataParallel", "torch.nn.parallel.DataParallel", "torch.nn.parallel.DistributedDataParallel",
    "torch.compile", "torch.jit.script",
})
# Tensor methods and functions whose result has the kind of their input (reshapes, casts, clamps).
KIND_KEEPING_METHODS: frozenset[str] = frozenset({
    "view", "view_as", "reshape", "squeeze", "unsqueeze", "float", "double", "half", "bfloat16", "to", "cpu",
    "cuda", "contiguous", "clamp", "clamp_", "clip", "permute", "transpose", "flatten", "type", "type_as",
    "detach", "squeeze_", "unsqueeze_", "train", "eval",
})
KIND_KEEPING_FUNCTIONS: frozenset[str] = frozenset({
    "torch.squeeze", "torch.unsqueeze", "torch.flatten", "torch.reshape", "torch.clamp", "torch.clip",
    "tensorflow.squeeze", "tensorflow.reshape", "tensorflow.clip_by_value", "keras.ops.squeeze",
    "keras.ops.reshape", "keras.ops.clip",
})

# Losses and what their prediction must be: "logits", "log_probs" (log-probabilities) or "probs"; "from_logits"
# for the Keras losses, where the `from_logits` argument (False by default) says logits or probabilities.
# qualified name -> (expects, "class" or "function", prediction position, prediction keyword, from_logits position)
# A class's position is where its instance's call takes the prediction; a position of None: keyword only.
LOSSES: dict[str, tuple[str, str, int | None, str, int | None]] = {
    "torch.nn.CrossEntropyLoss": ("logits", "class", 0, "input", None),
    "torch.nn.functional.cross_entropy": ("logits", "function", 0, "input", None),
    "torch.nn.NLLLoss": ("log_probs", "class", 0, "input", None),
    "torch.nn.functional.nll_loss": ("log_probs", "function", 0, "input", None),
    "torch.nn.BCEWithLogitsLoss": ("logits", "class", 0, "input", None),
    "torch.nn.functional.binary_cross_entropy_with_logits": ("logits", "function", 0, "input", None),
    "torch.binary_cross_entropy_with_logits": ("logits", "function", 0, "input", None),
    "torch.nn.BCELoss": ("probs", "class", 0, "input", None),
    "torch.nn.functional.binary_cross_entropy": ("probs", "function", 0, "input", None),
    "keras.losses.CategoricalCrossentropy": ("from_logits", "class", 1, "y_pred", 0),
    "keras.losses.SparseCategoricalCrossentropy": ("from_logits", "class", 1, "y_pred", 0),
    "keras.losses.BinaryCrossentropy": ("from_logits", "class", 1, "y_pred", 0),
    "keras.losses.BinaryFocalCrossentropy": ("from_logits", "class", 1, "y_pred", None),
    "keras.losses.CategoricalFocalCrossentropy": ("from_logits", "class", 1, "y_pred", None),
    "keras.losses.categorical_crossentropy": ("from_logits", "function", 1, "y_pred", 2),
    "keras.losses.sparse_categorical_crossentropy": ("from_logits", "function", 1, "y_pred", 2),
    "keras.losses.binary_crossentropy": ("from_logits", "function", 1, "y_pred", 2),
    "keras.losses.binary_focal_crossentropy": ("from_logits", "function", 1, "y_pred", None),
    "keras.losses.categorical_focal_crossentropy": ("from_logits", "function", 1, "y_pred", None),
    "keras.metrics.categorical_crossentropy": ("from_logits", "function", 1, "y_pred", 2),
    "keras.metrics.sparse_categorical_crossentropy": ("from_logits", "function", 1, "y_pred", 2),
    "keras.metrics.binary_crossentropy": ("from_logits", "function", 1, "y_pred", 2),
    "keras.backend.categorical_crossentropy": ("from_logits", "function", 1, "output", 2),
    "keras.backend.sparse_categorical_crossentropy": ("from_logits", "function", 1, "output", 2),
    "keras.backend.binary_crossentropy": ("from_logits", "function", 1, "output", 2),
    "keras.ops.categorical_crossentropy": ("from_logits", "function", 1, "output", 2),
    "keras.ops.sparse_categorical_crossentropy": ("from_logits", "function", 1, "output", 2),
    "keras.ops.binary_crossentropy": ("from_logits", "function", 1, "output", 2),
    "tensorflow.nn.softmax_cross_entropy_with_logits": ("logits", "function", 1, "logits", None),
    "tensorflow.nn.softmax_cross_entropy_with_logits_v2": ("logits", "function", 1, "logits", None),
    "tensorflow.nn.sparse_softmax_cross_entropy_with_logits": ("logits", "function", 1, "logits", None),
    "tensorflow.nn.sigmoid_cross_entropy_with_logits": ("logits", "function", 1, "logits", None),
    "tensorflow.compat.v1.nn.softmax_cross_entropy_with_logits": ("logits", "function", None, "logits", None),
    "tensorflow.compat.v1.nn.softmax_cross_entropy_with_logits_v2": ("logits", "function", None, "logits", None),
    "tensorflow.compat.v1.nn.sparse_softmax_cross_entropy_with_logits": ("logits", "function", None, "logits",
                                                                         None),
    "tensorflow.compat.v1.nn.sigmoid_cross_entropy_with_logits": ("logits", "function", None, "logits", None),
    "tensorflow.compat.v1.losses.softmax_cross_entropy": ("logits", "function", 1, "logits", None),
    "tensorflow.compat.v1.losses.sparse_softmax_cross_entropy": ("logits", "function", 1, "logits", None),
    "tensorflow.compat.v1.losses.sigmoid_cross_entropy": ("logits", "function", 1, "logits", None),
}
# Other spellings of the same losses: prefix -> the prefix the table uses.
LOSS_PREFIX_ALIASES: tuple[tuple[str, str], ...] = (
    ("torch.nn.modules.loss.", "torch.nn."),
    ("tensorflow.losses.softmax_cross_entropy", "tensorflow.compat.v1.losses.softmax_cross_entropy"),
    ("tensorflow.losses.sparse_softmax_cross_entropy", "tensorflow.compat.v1.losses.sparse_softmax_cross_entropy"),
    ("tensorflow.losses.sigmoid_cross_entropy", "tensorflow.compat.v1.losses.sigmoid_cross_entropy"),
    ("tensorflow.losses.", "keras.losses."),  # TF 2: tf.losses is Keras's
    ("tensorflow.keras.metrics.", "keras.metrics."),
)
# Keras loss names accepted as strings by compile() (all of them expect probabilities), and the class each is.
KERAS_LOSS_NAMES: dict[str, str] = {
    "categorical_crossentropy": "CategoricalCrossentropy", "CategoricalCrossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "SparseCategoricalCrossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy", "BinaryCrossentropy": "BinaryCrossentropy",
    "bce": "BinaryCrossentropy", "BCE": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy", "BinaryFocalCrossentropy": "BinaryFocalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "CategoricalFocalCrossentropy": "CategoricalFocalCrossentropy",
}
# Losses that put their logits through a sigmoid (one probability per output), not a softmax.
SIGMOID_LOSSES: frozenset[str] = frozenset({
    "torch.nn.BCEWithLogitsLoss", "torch.nn.functional.binary_cross_entropy_with_logits",
    "torch.binary_cross_entropy_with_logits", "torch.nn.BCELoss", "torch.nn.functional.binary_cross_entropy",
    "keras.losses.BinaryCrossentropy", "keras.losses.BinaryFocalCrossentropy", "keras.losses.binary_crossentropy",
    "keras.losses.binary_focal_crossentropy", "keras.metrics.binary_crossentropy",
    "keras.backend.binary_crossentropy", "keras.ops.binary_crossentropy",
    "tensorflow.nn.sigmoid_cross_entropy_with_logits", "tensorflow.compat.v1.nn.sigmoid_cross_entropy_with_logits",
    "tensorflow.compat.v1.losses.sigmoid_cross_entropy",
})
# The log_softmax of a softmax function, under the same module (`F.softmax` -> `F.log_softmax`).
LOG_SOFTMAX_OF: dict[str, str] = {
    "torch.softmax": "log_softmax", "torch.nn.functional.softmax": "log_softmax",
    "torch.special.softmax": "log_softmax", "torch.nn.Softmax": "LogSoftmax",
}
# Methods a training framework runs without autograd (Lightning's evaluation hooks).
NO_GRAD_METHODS: frozenset[str] = frozenset({"validation_step", "test_step", "predict_step"})
# -- optimizers, schedulers and AMP scalers (TL011, TL013, TL014, TL017) -------------------------------
# Optimizers that keep no state between steps unless an argument turns it on: qualname -> (position,
# keywords) of that argument. SGD without momentum is `p -= lr * grad`: a new one loses nothing (TL014).
STATELESS_UNLESS: dict[str, tuple[int, tuple[str, ...]]] = {
    "torch.optim.SGD": (2, ("momentum",)),
    "keras.optimizers.SGD": (1, ("momentum",)),
}
# Methods that advance an LR scheduler (timm's schedulers also step per update).
SCHEDULER_STEP_METHODS: frozenset[str] = frozenset({"step", "step_update"})
# Objects that change a learning rate only once handed to something: a Keras schedule (to an optimizer) and
# Keras callbacks (to fit()). Built and never handed over, they change nothing (TL017).
HANDED_OVER_LR_CONTROLS: tuple[str, ...] = (
    "keras.optimizers.schedules.", "keras.callbacks.LearningRateScheduler", "keras.callbacks.ReduceLROnPlateau",
)
# Methods that put a module back to a fixed state: an optimizer built after them starts over on purpose
# (episodic adaptation, a learning-rate range test that restores the weights, federated rounds).
MODEL_RESET_METHODS: frozenset[str] = frozenset({"load_state_dict", "reset_parameters", "set_weights",
                                                 "load_weights", "apply"})
# -- data loading: loaders, datasets, samplers, data-parallel wrappers (TL012, TL015, TL018) ------------
# DataLoader classes with torch's signature: DataLoader(dataset, batch_size, shuffle, sampler, batch_sampler, ...)
# (PyG's takes (dataset, batch_size, shuffle, ...) and passes sampler/batch_sampler on by keyword).
DATA_LOADERS: frozenset[str] = frozenset({
    "torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader",
    "torch_geometric.loader.DataLoader", "torch_geometric.data.DataLoader",
})
# Where each argument of a DataLoader may be given by position.
DATA_LOADER_POSITIONS: dict[str, int] = {"dataset": 0, "batch_size": 1, "shuffle": 2, "sampler": 3,
                                         "batch_sampler": 4}
DISTRIBUTED_SAMPLERS: frozenset[str] = frozenset({
    "torch.utils.data.DistributedSampler", "torch.utils.data.distributed.DistributedSampler",
})
# DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False)
DISTRIBUTED_SAMPLER_SHUFFLE: tuple[int, str, bool] = (3, "shuffle", True)  # position, keyword, default
# Samplers that draw from the whole dataset in every process (no sharding by rank).
LOCAL_SAMPLERS: frozenset[str] = frozenset({
    "torch.utils.data.RandomSampler", "torch.utils.data.sampler.RandomSampler",
    "torch.utils.data.SequentialSampler", "torch.utils.data.sampler.SequentialSampler",
    "torch.utils.data.SubsetRandomSampler", "torch.utils.data.sampler.SubsetRandomSampler",
    "torch.utils.data.WeightedRandomSampler", "torch.utils.data.sampler.WeightedRandomSampler",
})
# Wrappers that run the model's forward and backward in several processes, each on its own share of the data.
DATA_PARALLEL_WRAPPERS: frozenset[str] = frozenset({
    "torch.nn.parallel.DistributedDataParallel", "torch.nn.parallel.distributed.DistributedDataParallel",
    "torch.distributed.fsdp.FullyShardedDataParallel",
    "torch.distributed.fsdp.fully_sharded_data_parallel.FullyShardedDataParallel",
    "apex.parallel.DistributedDataParallel",
})
# Datasets that are indexed (map-style): a DataLoader over them draws indices from its sampler.
MAP_DATASETS: frozenset[str] = frozenset({
    "torch.utils.data.TensorDataset", "torch.utils.data.dataset.TensorDataset",
    "torch.utils.data.Subset", "torch.utils.data.dataset.Subset",
    "torch.utils.data.ConcatDataset", "torch.utils.data.dataset.ConcatDataset",
    "torch.utils.data.random_split", "torch.utils.data.dataset.random_split",
    "torch.utils.data.StackDataset",
    "datasets.Dataset.from_dict", "datasets.Dataset.from_pandas", "datasets.Dataset.from_list",
    "datasets.Dataset.from_generator", "datasets.load_from_disk",
    "torch.tensor", "torch.as_tensor", "torch.from_numpy", "torch.Tensor", "torch.FloatTensor",
    "torch.LongTensor", "numpy.array", "numpy.asarray",
})
MAP_DATASET_PREFIXES: tuple[str, ...] = (
    "torchvision.datasets.", "torch_geometric.datasets.", "ogb.graphproppred.", "ogb.nodeproppred.",
    "ogb.linkproppred.",
)
# HF datasets' loaders: map-style unless `streaming=True`.
HF_LOAD_DATASET: frozenset[str] = frozenset({"datasets.load_dataset"})
# Methods of a HF / PyG dataset that return a dataset of the same kind.
SAME_KIND_DATASET_METHODS: frozenset[str] = frozenset({
    "map", "filter", "select", "with_format", "with_transform", "remove_columns", "rename_column",
    "rename_columns", "cast", "cast_column", "flatten", "select_columns", "index_select", "copy",
})
# Datasets read as streams (IterableDataset): the DataLoader takes their order; shuffle=True is an error.
ITERABLE_DATASETS: frozenset[str] = frozenset({
    "torch.utils.data.IterableDataset", "torch.utils.data.dataset.IterableDataset",
    "torch.utils.data.ChainDataset", "datasets.IterableDataset",
})
ITERABLE_DATASET_PREFIXES: tuple[str, ...] = (
    "webdataset.", "torchdata.", "torchtext.datasets.", "torch.utils.data.datapipes.", "streaming.",
)
DATASET_BASES: frozenset[str] = frozenset({"torch.utils.data.Dataset", "torch.utils.data.dataset.Dataset"})
# Calls that hand back the object they are given (for what it iterates): `enumerate(loader)`, `tqdm(loader)`,
# `accelerator.prepare(loader)`. By the last part of the name.
ITERATION_WRAPPERS: frozenset[str] = frozenset({"enumerate", "iter", "tqdm", "track", "progress_bar",
                                                "prepare", "setup_dataloaders"})
# Calls that take a loader or sampler without changing how it samples (a loader handed to anything else may get
# another sampler: `ray.train.torch.prepare_data_loader(loader)`).
HARMLESS_DATA_CALLS: frozenset[str] = frozenset({
    "enumerate", "iter", "next", "len", "tqdm", "track", "progress_bar", "zip", "print", "isinstance", "hasattr",
    "getattr", "str", "repr", "int", "float", "range", "list", "math.ceil", "ceil", "info", "log", "debug",
    "warning", "format",
})
# Names that say a dataset is split between processes by hand (`Subset(ds, range(rank, n, world_size))`).
RANK_WORDS: frozenset[str] = frozenset({"rank", "local_rank", "global_rank", "world_size", "get_rank",
                                        "get_world_size", "num_replicas", "shard", "num_shards", "process_index",
                                        "num_processes", "node_rank", "shard_id", "world"})
# Keras: fit() draws batches in a new order every epoch (shuffle=True is its default for arrays); a tf.data
# pipeline keeps its own order unless it has a .shuffle().
KERAS_FIT_SHUFFLE_DEFAULT = True
TF_DATASET_SOURCES: frozenset[str] = frozenset({"tensorflow.data.Dataset.from_tensor_slices"})
# Data drawn at random (synthetic data for demos and benchmarks): its order means nothing.
RANDOM_DATA_PREFIXES: tuple[str, ...] = ("numpy.random.", "sklearn.datasets.make_", "torch.distributions.")
RANDOM_DATA_FUNCTIONS: frozenset[str] = frozenset({
    "torch.rand", "torch.randn", "torch.randint", "torch.randperm", "torch.normal", "torch.rand_like",
    "torch.randn_like", "torch.randint_like", "torch.bernoulli", "torch.multinomial", "torchvision.datasets.FakeData",
})
# Calls that convert data without changing what it is (random stays random).
DATA_CONVERSIONS: frozenset[str] = frozenset({
    "torch.tensor", "torch.as_tensor", "torch.from_numpy", "torch.Tensor", "torch.FloatTensor", "torch.LongTensor",
    "numpy.array", "numpy.asarray", "numpy.float32",
})
DATA_CONVERSION_METHODS: frozenset[str] = frozenset({
    "to", "float", "long", "int", "double", "half", "cuda", "cpu", "astype", "reshape", "view", "numpy",
    "contiguous", "clone", "unsqueeze", "squeeze", "type",
})
# Names that say data is made up (`RandomDataset`, `dummy_data`, `FakeData`, `SyntheticDataset`).
SYNTHETIC_DATA_NAME = r"(?i).*(random|fake|dummy|synthetic|boring|toy).*"
# tf.data methods that keep the order of the elements they get (a pipeline with none of `.shuffle()` draws the
# same order every epoch).
TF_ORDER_KEEPING_METHODS: frozenset[str] = frozenset({
    "batch", "padded_batch", "map", "prefetch", "cache", "repeat", "unbatch", "filter", "take", "skip",
    "apply", "with_options", "ragged_batch", "rebatch", "map_with_legacy_function", "enumerate",
})

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
