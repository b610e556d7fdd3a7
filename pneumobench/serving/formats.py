"""The export formats and the parity an exported file must keep: plain constants, so that the
command line lists them without importing torch."""

FORMATS = ("onnx", "torchscript")
PARITY_TOLERANCE = 1e-4  # largest absolute class-probability difference to PyTorch
