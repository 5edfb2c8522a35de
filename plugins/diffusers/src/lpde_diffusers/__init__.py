"""lightning-pde-diffusers: a diffusers ``UNet2DModel`` as a PID / PIDDM teacher.

``model.teacher: {class_path: DiffusersTeacher, init_args: {unet: path/to/saved_unet, data_shape: [1, 8, 8]}}``
wraps a UNet2DModel trained with EDM preconditioning (diffusers' ``EDMEulerScheduler``) so that a PID student can
distil it; the student's default network is a copy of the UNet. diffusers is imported only when a UNet is built."""

from lpde_diffusers.unet import DiffusersTeacher, DiffusersUNet

#: the lightning-pde plugin API this package was written for (checked by lightning_pde.registry)
LPDE_PLUGIN_API = 1

__all__ = ["DiffusersTeacher", "DiffusersUNet"]
