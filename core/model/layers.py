"""Names of the layers that code outside training relies on: one home for each.

Training builds models with these names; explanation and the gate find layers by them.
"""

# The last spatial feature map: Grad-CAM's default layer.
LAST_CONV_LAYER = "last_conv"
# The sigmoid output P(pneumonia); its pre-activation is the logit.
OUTPUT_LAYER = "pneumonia"
