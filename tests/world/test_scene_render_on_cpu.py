import numpy as np

from wmsd_ray.world.scene import Scene, WorldObject, path_states, random_scene


def test_random_scenes_obey_the_world_rules(world, rng):
    for _ in range(200):
        s = random_scene(world, rng)
        assert len(s.objects) == world.num_objects
        assert len({o.name for o in s.objects}) == world.num_objects  # distinct (colour, shape)
        assert len({o.cell for o in s.objects}) == world.num_objects  # distinct cells
        assert all(0 <= o.row < world.grid and 0 <= o.col < world.grid for o in s.objects)


def test_excluded_layouts_are_never_drawn(world):
    first = random_scene(world, np.random.default_rng(5))
    again = random_scene(world, np.random.default_rng(5), exclude_keys={first.key()})
    assert again.key() != first.key()


def test_render_puts_colour_only_in_occupied_cells(world, renderer):
    s = Scene(4, (WorldObject("red", "square", 0, 0), WorldObject("blue", "circle", 3, 2)))
    img = renderer.render(s).astype(int)
    c = world.cell
    assert img.shape == (world.resolution, world.resolution, 3)
    centre = img[c // 2, c // 2]
    assert centre[0] > 200 and centre[1] < 60  # red
    assert img[3 * c + c // 2, 2 * c + c // 2][2] > 200  # blue
    empty = img[c:2 * c, c:2 * c]
    assert empty.max() < 40  # background only
    # squares fill their corners, circles do not
    corner = (c // 8, c // 8)  # inside the square, outside the circle
    assert img[corner][0] > 150
    assert img[3 * c + corner[0], 2 * c + corner[1]][2] < 60


def test_video_moves_only_the_agent(world, renderer):
    s = Scene(4, (WorldObject("red", "square", 0, 0), WorldObject("blue", "circle", 3, 3), WorldObject("green", "square", 2, 0)))
    path = [(0, 0), (0, 1), (0, 2), (1, 2)]
    states = path_states(s, "red square", path, world.frames)
    assert [st.get("red square").cell for st in states] == path + [(1, 2)] * (world.frames - len(path))
    assert all(st.get("blue circle").cell == (3, 3) for st in states)
    video = renderer.render_path(s, "red square", path)
    assert video.shape == (world.frames, world.resolution, world.resolution, 3) and video.dtype == np.uint8
    assert not np.array_equal(video[0], video[3]) and np.array_equal(video[3], video[-1])
