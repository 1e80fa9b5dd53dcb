"""Connections on the canvas follow the automatic layout's routes (contract §7) and stay visible
when cards are moved: each is checked against the cards as drawn (its stroked path against
every card other than its own two)."""
from __future__ import annotations

import json

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainterPathStroker

from designer.app.canvas.items import CARD_RECT, smooth_path
from designer.app.panels.gallery import design_preview
from designer.core.design import Design, Node
from designer.core.layout import CARD_W, ROW, layout
from designer.io.design_file import design_to_json
from designer.io.templates import find_template
from tests.app.conftest import drag


def hidden_edges(scene, margin: float = 2.0, over_too: bool = True) -> list[str]:
    """Connections whose drawn path runs under a card other than their own two (or over one,
    with ``over_too``: a route that found no way around is drawn above the cards)."""
    stroker = QPainterPathStroker()
    stroker.setWidth(1.0)
    cards = {n: CARD_RECT.translated(item.pos()).adjusted(-margin, -margin, margin, margin)
             for n, item in scene.nodes.items()}
    bad = []
    for (s, t), edge in scene.edges.items():
        if not over_too and edge.zValue() > max(i.zValue() for i in scene.nodes.values()):
            continue
        stroke = stroker.createStroke(edge.path())
        box = stroke.boundingRect()
        for n, card in cards.items():
            if n not in (s, t) and card.intersects(box) and stroke.intersects(card):
                bad.append(f"{s} → {t} under {n}")
    return bad


def ends_at_ports(scene) -> bool:
    for (s, t), edge in scene.edges.items():
        path = edge.path()
        start, end = path.pointAtPercent(0), path.pointAtPercent(1)
        if start != scene.nodes[s].output_port() or end != scene.nodes[t].input_port():
            return False
    return True


def test_the_hidden_edge_check_itself(window):
    """A connection drawn straight down a column of cards is caught."""
    window.new_from_template(find_template("resnet18"))
    scene = window.scene
    edge = scene.edges[("maxpool", "layer1.0.add")]
    edge.setPath(smooth_path([(0.0, 600.0), (0.0, 1300.0)]))
    assert hidden_edges(scene)


def test_templates_draw_every_connection_along_its_layout_route(window):
    for name in ("resnet18", "inception-block", "vgg16"):
        window.new_from_template(find_template(name))
        scene, doc = window.scene, window.document
        lay = layout(doc.design)
        assert {n: (i.pos().x(), i.pos().y()) for n, i in scene.nodes.items()} == lay.positions()
        assert set(scene.edges) == set(doc.design.edges)
        for key, edge in scene.edges.items():
            assert edge.points == lay.edges[key]
            assert not edge.crossing and edge.zValue() < scene.nodes[key[0]].zValue()
        assert hidden_edges(scene) == []
        assert ends_at_ports(scene)


def test_resnet_add_shows_both_inputs(window):
    """The issue's case: layer2.1.add's shortcut used to run behind the block's cards."""
    window.new_from_template(find_template("resnet18"))
    scene = window.scene
    shortcut = scene.edges[("layer2.0.relu_out", "layer2.1.add")]
    column = scene.nodes["layer2.1.conv1"].pos().x()
    xs = [p[0] for p in shortcut.points]
    assert max(xs) >= column + CARD_W / 2 + 20  # beside the column of cards, not behind it
    assert hidden_edges(scene) == []


def chain_with_skip() -> Design:
    nodes = [Node("input", "Input", {"channels": 3, "height": 8, "width": 8}),
             Node("a", "ReLU"), Node("b", "ReLU"), Node("c", "ReLU"), Node("add", "Add"),
             Node("x", "ReLU")]
    edges = [("input", "a"), ("a", "b"), ("b", "c"), ("c", "add"), ("input", "add")]
    return Design.from_parts("skip", nodes, edges)


def test_a_card_dragged_onto_a_connection_pushes_it_aside_and_back(window, qtbot):
    window.document.replace(chain_with_skip(), None)
    scene, doc = window.scene, window.document
    skip = scene.edges[("input", "add")]
    ideal = list(skip.points)
    lane_x = max(p[0] for p in ideal)
    x_card = scene.nodes["x"]
    window.view.resetTransform()
    window.view.centerOn(scene.nodes["b"])
    # drag the loose card x right onto the skip connection's lane, beside b
    target = QPointF(lane_x, scene.nodes["b"].pos().y())
    grab = x_card.pos() + QPointF(0, 40)
    window.view.centerOn(QPointF((grab.x() + target.x()) / 2, (grab.y() + target.y()) / 2))
    drag(window.view, grab, target + QPointF(0, 40))
    assert x_card.pos() == target
    assert doc.design.node("x").position == (target.x(), target.y())
    assert skip.points != ideal  # routed around x now
    assert not skip.crossing
    assert hidden_edges(scene) == []
    assert ends_at_ports(scene)
    # undo: x goes back, and the connection takes its lane again
    doc.undo_stack.undo()
    assert skip.points == ideal
    doc.undo_stack.redo()
    assert skip.points != ideal and hidden_edges(scene) == []


def test_moving_a_card_reroutes_its_own_connections_live_and_on_release(window):
    window.new_from_template(find_template("resnet18"))
    scene, doc = window.scene, window.document
    item = scene.nodes["layer1.0.bn1"]
    start = item.pos()
    window.view.resetTransform()
    window.view.centerOn(item)
    # move it down-right across the skip lane, onto empty canvas beside the column
    drag(window.view, start + QPointF(0, 40), start + QPointF(300, 40 + 2 * ROW))
    assert item.pos() == start + QPointF(300, 2 * ROW)
    assert hidden_edges(scene) == []
    assert ends_at_ports(scene)
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert item.pos() == start
    lay = layout(doc.design)
    assert all(e.points == lay.edges[k] for k, e in scene.edges.items())


def test_a_card_moved_by_an_edit_onto_connections_leaves_none_hidden(window):
    window.new_from_template(find_template("inception-block"))
    scene, doc = window.scene, window.document
    # put branch 3's first card right on top of branch 1's long connection into the Concat,
    # and the Input under the middle of the fan
    x1 = scene.nodes["branch1_relu"].pos().x()
    y = scene.nodes["branch2_conv"].pos().y()
    moves = {"branch3_reduce": ((scene.nodes["branch3_reduce"].pos().x(),
                                 scene.nodes["branch3_reduce"].pos().y()), (x1, y + ROW))}
    doc.move_nodes(moves)
    assert hidden_edges(scene) == []
    assert ends_at_ports(scene)
    doc.undo_stack.undo()
    assert hidden_edges(scene) == []
    lay = layout(doc.design)
    assert all(e.points == lay.edges[k] for k, e in scene.edges.items())


def test_a_hopeless_route_is_drawn_over_the_cards(window):
    """Cards packed so tightly that no lane exists: the connection is drawn above them, dashed,
    not hidden underneath."""
    nodes = [Node("input", "Input", {"channels": 3, "height": 8, "width": 8}, (0.0, 0.0)),
             Node("out", "ReLU", {}, (0.0, 600.0))]
    nodes += [Node(f"w{i}", "ReLU", {}, (float(x), 250.0)) for i, x in
              enumerate(range(-30 * 216, 31 * 216, 216))]
    window.document.replace(Design.from_parts("wall", nodes, [("input", "out")]), None)
    edge = window.scene.edges[("input", "out")]
    assert edge.crossing
    assert edge.zValue() > window.scene.nodes["w30"].zValue()
    assert edge.pen().style() == Qt.PenStyle.DashLine


def test_ctrl_l_lays_out_and_routes(window, qtbot):
    window.new_from_template(find_template("resnet18"))
    doc, scene = window.document, window.scene
    # scramble: every card a little to the side
    doc.move_nodes({n: (doc.design.node(n).position, (i * 37.0 % 500, i * 150.0))
                    for i, n in enumerate(doc.design.node_ids)})
    assert hidden_edges(scene) == []  # re-routed around the scrambled cards
    # packed closer than a connection can pass between: drawn over the cards, never under
    doc.move_nodes({n: (doc.design.node(n).position, (i * 37.0 % 500, i * 90.0))
                    for i, n in enumerate(doc.design.node_ids)})
    assert hidden_edges(scene, over_too=False) == []
    assert any(e.crossing for e in scene.edges.values())
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    lay = layout(doc.design)
    assert {n: doc.design.node(n).position for n in doc.design.node_ids} == lay.positions()
    assert all(e.points == lay.edges[k] for k, e in scene.edges.items())
    doc.undo_stack.undo()  # the scrambled positions, still with nothing hidden
    assert doc.design.node("conv1").position == (37.0, 90.0)
    assert hidden_edges(scene, over_too=False) == []


def test_a_file_without_positions_opens_laid_out(window, tmp_path):
    design = find_template("inception-block").load()
    for node_id in design.node_ids:
        design.move_node(node_id, None)
    path = tmp_path / "plain.json"
    path.write_text(design_to_json(design))
    assert '"position"' not in path.read_text()
    assert window.open_path(path)
    lay = layout(design)
    scene = window.scene
    assert {n: (i.pos().x(), i.pos().y()) for n, i in scene.nodes.items()} == lay.positions()
    assert all(e.points == lay.edges[k] for k, e in scene.edges.items())
    # part of the file positioned: those cards stay, the others are laid out
    data = json.loads(design_to_json(design))
    data["nodes"][0]["position"] = [500, -300]
    path.write_text(json.dumps(data))
    assert window.open_path(path)
    assert scene.nodes["input"].pos() == QPointF(500, -300)
    assert scene.nodes["concat"].pos().toTuple() == lay.positions()["concat"]
    assert hidden_edges(scene) == []


def test_the_gallery_preview_draws_the_layout(qapp):
    design = find_template("inception-block").load()
    plain = design_preview(design).toImage()
    # stored positions don't change the preview: it is the layout's drawing
    moved = design.copy()
    for i, n in enumerate(moved.node_ids):
        moved.move_node(n, (0.0, i * 200.0))
    assert design_preview(moved).toImage() == plain
    # the four branches side by side: four blocks in one row of the preview
    row = plain.height() // 2
    colours = [plain.pixelColor(x, row) for x in range(plain.width())]
    blocks, inside = 0, False
    for c in colours:
        dark = c.lightness() < 245
        if dark and not inside:
            blocks += 1
        inside = dark
    assert blocks >= 4


def test_smooth_path_follows_its_points():
    points = [(0.0, 0.0), (0.0, 13.0), (40.0, 39.0), (40.0, 100.0), (0.0, 100.0), (0.0, 120.0)]
    path = smooth_path(points)
    assert path.pointAtPercent(0).toTuple() == points[0]
    assert path.pointAtPercent(1).toTuple() == points[-1]
    # the S-curve stays inside the box of its piece, the corners inside their corner
    assert path.boundingRect() == QRectF(0, 0, 40, 120)
    # vertical where it meets the straight pieces: the curve leaves and arrives vertically
    assert path.pointAtPercent(0.05).x() == 0.0


def test_the_card_grid_answers_as_a_scan_of_every_card_would():
    import random
    from designer.app.canvas.scene import CardGrid, _intersects
    rng = random.Random(5)
    grid, rects = CardGrid(), {}
    for step in range(600):
        n = f"n{rng.randrange(60)}"
        action = rng.random()
        if action < 0.6:
            rects[n] = (rng.uniform(-3000, 3000), rng.uniform(-2000, 9000), 216.0, 78.0)
            grid.put(n, rects[n])
        elif action < 0.8:
            rects.pop(n, None)
            grid.remove(n)
        elif n in rects:
            new = f"m{step}"
            rects[new] = rects.pop(n)
            grid.rename(n, new)
        box = (rng.uniform(-4000, 4000), rng.uniform(-3000, 10000), rng.choice([1.0, 300.0, 9000.0]),
               rng.choice([1.0, 200.0, 12000.0]))
        assert grid.ids_in(box) == {k for k, r in rects.items() if _intersects(r, box)}
