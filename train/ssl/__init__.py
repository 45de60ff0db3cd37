"""What the multi-view methods (SimCLR, BYOL, SimSiam, DINO) share: the views' photometric
augmentation on the device, the losses as pure functions, projection heads, the EMA
teacher, global BatchNorm, the collapse measures and the `MultiViewMethod` base class.
Each method's own folder holds its spec and plug-in; docs/modern.md describes them."""
