"""The names of the common corruptions (no torch: plugin discovery and configs read them)."""

#: The reference study's 11 types, in its round-robin order.
STUDY_TYPES = (
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
#: Every type implemented here (the study's plus Gaussian noise).
ALL_TYPES = ("gaussian_noise",) + STUDY_TYPES
