"""Short answers to the questions a learner has at each control: the tutorials' own questions.

Plain data, so the texts can be reviewed in one place and shown as tooltips or expanders.
"""

WHY = {
    "activation": (
        "What does an activation do? It bends each layer's output. Without it, any stack of Dense "
        "layers collapses into one linear map, so depth would buy nothing. relu is the usual choice "
        "inside the network; softmax on the last layer turns ten scores into ten probabilities."
    ),
    "dense": (
        "Why dense layers? Each unit looks at every input, so a Dense layer can combine evidence from "
        "the whole image. The last Dense layer has one unit per class: its outputs are the class scores."
    ),
    "two_layers": (
        "Are two layers enough? For MNIST, one hidden layer of 512 units already reaches about 98% on the "
        "full 60,000 training digits (about 92% on the 5,000-digit sample Layerlab ships for offline use). "
        "Harder images (CIFAR-10) need convolutions: an MLP stalls near 50%, a small CNN passes 70%."
    ),
    "optimizer": (
        "What is the optimizer? The rule that nudges every weight after each batch, in the direction "
        "that lowers the loss. Adam and RMSprop adapt the step per weight and need little tuning; SGD "
        "with momentum is simpler and, well tuned, generalises well."
    ),
    "learning_rate": (
        "How big is each step? Too large and the loss jumps around or becomes NaN; too small and "
        "training crawls. 0.001 is a good start for Adam and RMSprop, 0.01 for SGD."
    ),
    "loss": (
        "What is the loss? The number training tries to make small: how wrong the predicted "
        "probabilities are. Cross-entropy suits classification; integer labels (0-9) use the sparse "
        "version, one-hot labels the plain one. Layerlab converts the labels to whichever you pick."
    ),
    "metrics": (
        "What are the metrics? Numbers watched during training but not optimised: accuracy is the "
        "share of images whose top class is right. Easier to read than the loss."
    ),
    "scaling": (
        "Why scale inputs to 0-1? Pixels arrive as integers 0-255. Large inputs make the first "
        "layer's outputs large, which slows or destabilises learning; dividing by 255 keeps them small."
    ),
    "reshape": (
        "Why reshape images? Dense layers read one flat vector, so a 28x28 image becomes 784 numbers "
        "(Flatten). Conv2D reads height x width x channels, so a grey image gets a channel axis: 28x28x1."
    ),
    "dtype": (
        "Why convert the dtype? Images are stored as uint8 to save memory; the network computes in "
        "float32, so they are converted (and scaled) on the way in, batch by batch."
    ),
    "epoch": (
        "What is an epoch? One pass over the whole training set. More epochs learn more, until the "
        "validation loss starts rising: that is overfitting."
    ),
    "batch_size": (
        "What is a batch? The images seen before each weight update. Small batches update often and "
        "noisily; large ones are smoother and faster per image, but may generalise a little worse."
    ),
    "validation_split": (
        "What is the validation split? A share of the training images held back and scored after "
        "each epoch, to see overfitting as it happens. The test set is kept apart for the end. "
        "A photo dataset added with its own validation/ folder validates on that folder instead."
    ),
    "early_stopping": (
        "Early stopping ends training when the validation loss has not improved for this many epochs."
    ),
    "keep_best": (
        "Keep the best epoch saves a checkpoint of the epoch with the lowest validation loss, beside "
        "the final model."
    ),
}
