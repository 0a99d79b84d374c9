"""Head pose (yaw, pitch, roll in degrees) from MTCNN's five landmarks.

Method (closed form, scaled-orthographic camera, a generic face):

* roll: angle of the line from the image-left eye to the image-right eye; positive when the
  image-right eye is lower (the head is tilted clockwise in the image). Exact for in-plane
  rotation. The points are then rotated by -roll about the eye midpoint.
* yaw: the nose tip stands ``NOSE_DEPTH`` (in interocular distances, IOD) in front of the face's
  midline, so turning the head by ``yaw`` moves it sideways by ``NOSE_DEPTH * sin(yaw)`` while
  the eyes' horizontal distance shrinks to ``IOD * cos(yaw)``:
  ``yaw = atan((nose_x - midline_x) / eye_distance_x / NOSE_DEPTH)``; the midline at the nose's
  height is interpolated between the eye midpoint and the mouth midpoint. Positive when the
  nose points to the image right.
* pitch: the nose's height between eyes and mouth, ``rho = (nose_y - eye_y) / (mouth_y - eye_y)``,
  is ``FRONTAL_NOSE_HEIGHT`` in a level face and moves by ``NOSE_DEPTH / EYE_MOUTH_HEIGHT *
  tan(pitch)``: ``pitch = atan((FRONTAL_NOSE_HEIGHT - rho) * EYE_MOUTH_HEIGHT / NOSE_DEPTH)``;
  positive when the chin is raised.

Constants: ``FRONTAL_NOSE_HEIGHT`` and ``EYE_MOUTH_HEIGHT`` are medians over 300 LFW faces
(people named A-L, first image each); ``NOSE_DEPTH`` is an anthropometric estimate (nose tip
about 28 mm in front of the pupils for a 63 mm interpupillary distance). Individual faces
differ from these means, so a single estimate is uncertain by roughly +-10 degrees (pitch
more than yaw); see docs/liveness.md for what it gives on real photos.
"""
from __future__ import annotations

import math

import numpy as np

NOSE_DEPTH = 0.45            # nose tip in front of the eye/mouth-corner plane, in IODs
FRONTAL_NOSE_HEIGHT = 0.545  # (nose_y - eye_y) / (mouth_y - eye_y) of a level face
EYE_MOUTH_HEIGHT = 1.095     # (mouth_y - eye_y) / IOD of a level face


def estimate_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(5, 2) landmarks (left eye, right eye, nose, left and right mouth corner; x, y pixels)
    -> (yaw, pitch, roll) in degrees. See the module docstring for the method and signs."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye = points[0], points[1]
    dx, dy = right_eye - left_eye
    roll = math.atan2(dy, dx)
    cos, sin = math.cos(-roll), math.sin(-roll)
    level = (points - (left_eye + right_eye) / 2) @ np.array([[cos, sin], [-sin, cos]])
    eye_mid = (level[0] + level[1]) / 2
    mouth_mid = (level[3] + level[4]) / 2
    nose = level[2]
    eye_distance = max(level[1, 0] - level[0, 0], 1e-6)
    eye_mouth = mouth_mid[1] - eye_mid[1]
    if eye_mouth <= 1e-6:  # degenerate landmarks: no vertical extent to measure against
        return 0.0, 0.0, math.degrees(roll)
    nose_height = (nose[1] - eye_mid[1]) / eye_mouth
    midline_x = eye_mid[0] + nose_height * (mouth_mid[0] - eye_mid[0])
    yaw = math.atan((nose[0] - midline_x) / eye_distance / NOSE_DEPTH)
    pitch = math.atan((FRONTAL_NOSE_HEIGHT - nose_height) * EYE_MOUTH_HEIGHT / NOSE_DEPTH)
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)
